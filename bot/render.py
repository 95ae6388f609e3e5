"""Answers as Discord embeds: numbered, linked sources, escaped text, within Discord's limits."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import discord

from index.answer.types import (
    CLOSEST,
    FURTHER_READING,
    MODE_LLM,
    MODEL_FAILED,
    MODEL_NOT_COVERED,
    NO_CLAIMS,
    Answer,
    Citation,
    Copy,
)
from index.text import plain

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
MESSAGE_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

ANSWER_COLOUR = discord.Colour.blurple()
NOT_COVERED_COLOUR = discord.Colour.light_grey()
ELLIPSIS = "…"
NOT_COVERED_HINT = "Try other words, or ask an admin to add articles about it."
FOLLOW_UP_HINT = "Start a thread on this answer to ask a follow-up."
# How an answer was made, said in the footer whenever a language model had a part in it.
WRITTEN_BY_MODEL = "Written by a language model; every quote checked"
MODEL_FOUND_NONE = "A language model read the closest passages and found no answer in them"
MODEL_LEFT_OUT = "Quoted from the articles: the language model's answer could not be checked"
MODEL_GAVE_NONE = "Quoted from the articles: the language model gave no usable answer"
MODEL_NOT_USED = "Quoted from the articles: the language model's reply was not used"
MODEL_SAID_NOT_COVERED = f"{MODEL_NOT_USED} (it found no answer in the articles)"
MODEL_GAVE_NO_CLAIMS = f"{MODEL_NOT_USED} (it gave no answer)"
# A masked link is only made for URLs that cannot break out of the markdown around them.
_SAFE_URL = re.compile(r"https?://[^\s()<>\[\]]+", re.I)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")
_SENTENCE_START = re.compile(r"[.!?…][\"'”’)\]]*\s+")
QUOTE_FRAME = "\n> “”"
TITLE_LIMIT = 160
MIN_TITLE = 24
MIN_QUOTE = 24
MIN_FIELD = 48
SOURCE_NAME_LIMIT = 100
ANSWER_LIMIT = 1500  # an answer is a sentence or two; the rest of the embed is for sources
ALSO_REPORTED = "*Also reported by* "
# At most this share of a source's field names its story's other copies; the quote keeps
# the rest. Outlets that do not fit are counted ("and 3 more").
ALSO_SHARE = 3


def clean(text: str) -> str:
    """`text` on one line, unable to format, link, mention, ping or hide anything."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(plain(text)))


def unescaped(text: str) -> str:
    """The plain text of something `clean` (or `answer_embed`'s bold) made safe to show."""
    text = text.replace("**", "").replace("\u200b", "")
    return re.sub(r"\\(.)", r"\1", text)


def fit(text: str, limit: int, cut: Callable[[str, int], str] | None = None) -> str:
    """`text` shortened (by `cut`, default `shorten`) and then cleaned, in at most `limit`.

    Cutting the raw text and escaping afterwards never leaves half an escape behind; escaping
    can lengthen the text, so the cut is tightened until the escaped text fits.
    """
    cut = cut or shorten
    text = " ".join(text.split())
    budget = limit
    while budget > 0:
        out = clean(cut(text, budget))
        if len(out) <= limit:
            return out
        budget -= len(out) - limit
    return ""


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters: at a sentence end if one is near, else a word."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    room = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(room) if m.end() <= limit]
    if ends and ends[-1] >= limit // 2:
        return room[: ends[-1]].rstrip()
    cut = room[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def shorten_left(text: str, limit: int) -> str:
    """The end of `text` in at most `limit` characters, from a sentence start if possible."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    tail = text[len(text) - limit + len(ELLIPSIS) :]
    starts = [m.end() for m in _SENTENCE_START.finditer(tail)]
    if starts and starts[0] <= len(tail) // 2:
        return tail[starts[0] :]
    space = tail.find(" ")
    return ELLIPSIS + (tail[space + 1 :] if 0 <= space < len(tail) // 2 else tail)


def answer_embed(answer: Answer, *, shown: int, footer: str | None = None) -> discord.Embed:
    """The reply to a question: the answer with its [n] markers and the answer itself in bold,
    then numbered sources. A hedged answer ("the closest they come: ...") is grey."""
    if not answer.found and not answer.hedged:
        return not_covered_embed(answer)
    embed = discord.Embed(
        title=fit(answer.question, EMBED_TITLE_LIMIT),
        description=_answer_text(answer),
        colour=ANSWER_COLOUR if answer.found else NOT_COVERED_COLOUR,
    )
    embed.set_footer(text=shorten(footer or FOLLOW_UP_HINT, FOOTER_LIMIT))
    _add_sources(embed, answer.citations[:shown])
    return embed


def model_note(answer: Answer) -> str | None:
    """How the answer was made, when a language model had a part in it: written by the
    model (and how many of its sentences were left out), or quoted from the articles
    because none of its sentences could be checked or it failed (an error, a timeout, a
    rate limit, output that is not an answer), or not used because it said nothing where the
    offline answer step answered (it found no answer, or gave none). None for an answer no
    model was asked for."""
    left_out = answer.dropped_claims
    sentences = f"{left_out} unsupported sentence{'s' if left_out != 1 else ''}"
    if answer.mode == MODE_LLM and not answer.found and not answer.citations:
        return MODEL_FOUND_NONE
    if answer.mode == MODE_LLM:
        return WRITTEN_BY_MODEL + (f" · {sentences} left out" if left_out else "")
    if left_out:
        return f"{MODEL_LEFT_OUT} ({sentences})"
    if answer.fallback == MODEL_FAILED:
        return MODEL_GAVE_NONE
    if answer.fallback == MODEL_NOT_COVERED:
        return MODEL_SAID_NOT_COVERED
    if answer.fallback == NO_CLAIMS:
        return MODEL_GAVE_NO_CLAIMS
    return None


def with_model_note(answer: Answer, footer: str) -> str:
    """`footer` under `model_note(answer)`, if there is one."""
    note = model_note(answer)
    return f"{note}\n{footer}" if note else footer


def _answer_text(answer: Answer) -> str:
    """The answer, cleaned, with `answer_span` in bold when it all fits."""
    if answer.answer_span:
        start, end = answer.answer_span
        parts = (answer.answer[:start], answer.answer[start:end], answer.answer[end:])
        before, middle, after = (clean(part) for part in parts)
        # `clean` drops the spaces at the parts' edges: put them back.
        before += " " if parts[0][-1:].isspace() else ""
        after = (" " if parts[2][:1].isspace() else "") + after
        text = f"{before}**{middle}**{after}"
        if middle and len(text) <= ANSWER_LIMIT:
            return text
    return fit(answer.answer, ANSWER_LIMIT)


def more_sources_embed(citations: Sequence[Citation]) -> discord.Embed:
    """Further passages (shown only to whoever asked for them)."""
    embed = discord.Embed(title="More sources", colour=ANSWER_COLOUR)
    if not citations:
        embed.description = "There are no further passages for this answer."
    _add_sources(embed, citations)
    return embed


def not_covered_embed(answer: Answer) -> discord.Embed:
    """The short, grey reply for a question the articles do not answer; its footer says
    when a language model's answer was left out."""
    embed = discord.Embed(
        title=fit(answer.question, EMBED_TITLE_LIMIT),
        description=f"{fit(answer.answer, MESSAGE_LIMIT)}\n{NOT_COVERED_HINT}",
        colour=NOT_COVERED_COLOUR,
    )
    note = model_note(answer)
    if note:
        embed.set_footer(text=shorten(note, FOOTER_LIMIT))
    return embed


def _add_sources(embed: discord.Embed, citations: Sequence[Citation]) -> None:
    """One field per citation, sharing what is left of the embed's 6,000 characters."""
    citations = citations[:EMBED_FIELD_LIMIT]
    for i, citation in enumerate(citations):
        name = _source_name(citation)
        left = EMBED_TOTAL_LIMIT - len(embed) - len(name)
        share = min(FIELD_VALUE_LIMIT, left // (len(citations) - i))
        if share < MIN_FIELD:
            break  # fewer sources rather than unreadable ones
        embed.add_field(name=name, value=_source_value(citation, share), inline=False)


def _source_name(citation: Citation) -> str:
    """`[n] Outlet · date`: the field name (where Discord shows no links)."""
    details = " · ".join(x for x in (citation.source, citation.published) if x)
    role = f" · {citation.role}" if citation.role in (FURTHER_READING, CLOSEST) else ""
    return f"[{citation.n}] " + fit(details or "Source", SOURCE_NAME_LIMIT - len(role)) + role


def _source_value(citation: Citation, limit: int) -> str:
    """The linked title, then the quoted passage with its supporting sentence in bold."""
    url = citation.url if citation.url and _SAFE_URL.fullmatch(citation.url) else None
    head_room = limit - len(QUOTE_FRAME) - MIN_QUOTE
    if head_room < MIN_TITLE + len("[]()"):
        head_room = limit  # no room for a quote: the title alone
    # A link is never cut: the title inside it is shortened, or the link is dropped.
    if url and head_room - len(url) - len("[]()") >= MIN_TITLE:
        title = fit(citation.title, min(TITLE_LIMIT, head_room - len(url) - len("[]()")))
        head = f"[{title.replace('[', '(').replace(']', ')')}]({url})"
    else:
        head = f"**{fit(citation.title, min(TITLE_LIMIT, head_room) - len('****'))}**"
    also = _also_reported(citation.also_reported_by, (limit - len(head)) // ALSO_SHARE)
    if also:
        head += "\n" + also
    quote = _quote(citation, limit - len(head) - len(QUOTE_FRAME))
    return f"{head}\n> “{quote}”" if quote else head


def _also_reported(copies: Sequence[Copy], limit: int) -> str:
    """ "Also reported by" the story's other copies, each `Outlet · date` linked to its URL,
    in at most `limit` characters; those that do not fit are counted, never cut."""
    names = [_copy_name(copy) for copy in copies]
    if not names:
        return ""
    for shown in range(len(names), -1, -1):
        more = len(names) - shown
        tail = f" and {more} more" if more and shown else (f"{more} outlets" if more else "")
        text = ALSO_REPORTED + ", ".join(names[:shown]) + tail
        if len(text) <= limit:
            return text
    return ""


def _copy_name(copy: Copy) -> str:
    """`Outlet · date`, linked to the copy when its URL is safe to link."""
    details = " · ".join(x for x in (copy.source, copy.published) if x) or copy.title
    name = fit(details, SOURCE_NAME_LIMIT).replace("[", "(").replace("]", ")")
    if copy.url and _SAFE_URL.fullmatch(copy.url):
        return f"[{name}]({copy.url})"
    return name


def _quote(citation: Citation, limit: int) -> str:
    """The passage around its supporting sentence (in bold), in at most `limit` characters."""
    if limit < MIN_QUOTE:
        return ""
    passage = citation.passage
    if not citation.highlight:
        return fit(passage, limit)
    start, end = citation.highlight
    bold = "**" + fit(passage[start:end], limit - 4) + "**"
    room = limit - len(bold)
    before, after = passage[:start].strip(), passage[end:].strip()
    # Context after the support reads on naturally; give the text before at most a third.
    before_part = fit(before, min(len(before) + 16, room // 3) - 1, shorten_left) if before else ""
    room -= len(before_part) + 1
    after_part = fit(after, room - 1) if after and room > MIN_QUOTE else ""
    return " ".join(x for x in (before_part, bold, after_part) if x)
