"""Text from outside (questions, articles) made safe to show: no control, escape or
invisible characters."""

from __future__ import annotations

import re

from index.errors import QuestionError, QuestionTooLongError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Terminal escapes (colour, cursor moves), and characters that are invisible or reorder the
# text around them: bidi marks, embeddings, overrides and isolates; zero-width and BOM.
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_INVISIBLE = re.compile(r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_UNSHOWABLE = re.compile(_CONTROL.pattern[:-1] + _INVISIBLE.pattern[1:])
# Lone surrogates: Python's stand-ins for bytes that were not UTF-8 (in a command-line
# argument), or half a UTF-16 pair (a JSON "\udc80"). No UTF-8 output can carry them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"
# The longest question answered, in characters once cleaned: every adapter's own limit (the
# bot's BOT_MAX_QUESTION_CHARS) is at most this. Longer questions are refused, never cut.
MAX_QUESTION_CHARS = 2000


def plain(text: str) -> str:
    """`text` on one line, without control characters, terminal escapes or invisible ones;
    what was not valid Unicode (a byte that is not UTF-8, say) is U+FFFD."""
    text = _SURROGATE.sub(REPLACEMENT_CHARACTER, text)
    text = _INVISIBLE.sub("", _TERMINAL_ESCAPE.sub("", text))
    return " ".join(_CONTROL.sub(" ", text).split())


def showable(text: str) -> str:
    """`text` without terminal escapes or invisible characters, other control characters
    made spaces; its line breaks kept (for article text)."""
    text = _INVISIBLE.sub("", _TERMINAL_ESCAPE.sub("", text))
    return _CONTROL.sub(lambda m: m.group() if m.group() == "\n" else " ", text)


def inert(text: str) -> str:
    """`text` with each control or invisible character replaced by a space, one for one (so
    offsets into it still hold, and line breaks stay): safe to print on a terminal."""
    return _UNSHOWABLE.sub(lambda m: m.group() if m.group() == "\n" else " ", text)


def question_text(text: str, *, limit: int = MAX_QUESTION_CHARS) -> str:
    """`text` as a question: `plain`, and at most `limit` characters.

    Raises:
        QuestionError: nothing is left once cleaned;
        QuestionTooLongError: more than `limit` characters are (it is refused, never cut).
    """
    question = plain(text)
    if not question:
        raise QuestionError("the question is empty")
    if len(question) > limit:
        raise QuestionTooLongError(len(question), limit)
    return question
