"""Conversations: a follow-up question understood in the context of the earlier turns.

A follow-up ("and Germany?", "when did he resign?") is rewritten into a question that stands
on its own before it is answered, so retrieval finds the right articles:

- with a language model (`NEWSBOT_LLM`), the model rewrites it from the conversation
  (LangChain's history-aware pattern: a prompt with the chat history, the follow-up, and
  the instruction to rewrite, not answer);
- without one, or when the model fails, `borrow_subject` does it by rule: an elliptical
  follow-up takes the place of the subject (or the time) of the previous question, and a
  question that only says "he", "it" or "they" is told whom it is about.

The history is a few `Turn`s, read back from wherever the conversation lives (a Discord
thread, `newsbot chat`); nothing extra is stored.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from index.models.chat import ModelCallError, call_model
from index.text import plain

if TYPE_CHECKING:  # LangChain is imported only when a model is used
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

log = logging.getLogger(__name__)

# Turns a follow-up is understood with by default (NEWSBOT_CHAT_TURNS).
DEFAULT_TURNS = 3
# A rewritten question longer than this is not a question but an answer: not used.
MAX_REWRITE_CHARS = 500
# A follow-up led by "and", "what about"... is elliptical when its rest is this short.
MAX_FRAGMENT_WORDS = 6

QUESTION_WORDS = frozenset(
    "who whom whose what when where why how which is are was were do does did has have had "
    "can could will would should may might".split()
)
PRONOUNS = frozenset("he she him her his hers they them their theirs it its".split())
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# A time: "last week", "yesterday", "in March", "2023", "on Monday", "since June"...
_TIME = (
    r"(?:(?:in|on|during|since|before|after|by|from|for|over)\s+)?"
    r"(?:(?:the\s+)?(?:last|this|next|past|previous|coming)\s+(?:few\s+)?"
    r"(?:days?|weeks?|weekend|months?|years?|quarter|summer|winter|spring|autumn|fall|"
    rf"{_WEEKDAYS})"
    r"|yesterday|today|tonight|now|recently|lately|these\s+days|so\s+far"
    rf"|(?:early|mid|late)?\s*(?:{_MONTHS})(?:\s+\d{{1,2}})?(?:,?\s+\d{{4}})?"
    rf"|{_WEEKDAYS}|(?:19|20)\d\d)"
)
_TIME_ONLY = re.compile(rf"\s*{_TIME}\s*", re.I)
_TIME_IN = re.compile(rf"\s+{_TIME}\b", re.I)
# What leads an elliptical follow-up: "and", "but", "what about", "how about", "as for"...
_LEAD = re.compile(
    r"^\s*(?:(?:and|but|also|so|ok(?:ay)?|then|plus|now)\b[\s,]*)*"
    r"(?:(?:what|how)\s+about|what\s+of|as\s+for|same\s+for|and\s+for)?\b\s*",
    re.I,
)
# A name: capitalised words (with "of", "de"... inside), or an acronym, maybe after "the".
_NAME = re.compile(
    r"(?:\bthe\s+)?\b[A-Z][\w.'’-]*(?:\s+(?:(?:of|de|del|la|von|van|al|bin)\s+)?[A-Z][\w.'’-]*)*"
)
_POSSESSIVE = re.compile(r"['’]s$")
_PREPOSITION = re.compile(r"(in|on|at|from|for|to|by|with|about|against|between)\s+", re.I)
_ARTICLE = re.compile(r"^the\s+", re.I)
# "tell me more", "go on": the previous question again.
_MORE = re.compile(
    r"(?:tell\s+me\s+)?more(?:\s+(?:details|detail|info|information|on\s+(?:this|that|it)))?"
    r"|go\s+on|details|explain|elaborate|anything\s+else|and\s+then",
    re.I,
)
_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: the question as it was understood, and the answer given."""

    question: str
    answer: str


class Conversation:
    """The last `turns` exchanges of a conversation (`newsbot chat` keeps one)."""

    def __init__(self, turns: int = DEFAULT_TURNS) -> None:
        self._turns: deque[Turn] = deque(maxlen=max(turns, 0) or None)
        self.enabled = turns > 0

    @property
    def history(self) -> list[Turn]:
        return list(self._turns) if self.enabled else []

    def add(self, question: str, answer: str) -> None:
        if self.enabled:
            self._turns.append(Turn(question, answer))

    def reset(self) -> None:
        self._turns.clear()


def recent(history: Iterable[Turn], turns: int) -> list[Turn]:
    """The last `turns` of `history` (none when `turns` is 0)."""
    kept = list(history)
    return kept[-turns:] if turns > 0 else []


class Rewriter(Protocol):
    """Turns a follow-up into a question that stands on its own."""

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        """`question` rewritten to be understood without `history` (oldest turn first);
        `question` itself when it already is, or when there is no history."""
        ...


class RuleRewriter:
    """The offline rewriter: `borrow_subject` from the previous question."""

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        return borrow_subject(question, history[-1].question)


def borrow_subject(question: str, previous: str) -> str:
    """`question` made to stand alone with the subject of `previous`, the question before.

    - "and Germany?" after "How much aid has the US sent?": "How much aid has Germany sent?"
      (the first name in `previous` is replaced; with no name there, the follow-up is added);
    - "what about last week?": the time in `previous` is replaced, or the time is added;
    - "when did he resign?" after "Why did Sunak call an election?": "when did he resign?
      (about Sunak)";
    - "why?": the previous question with it.
    Any other question is returned as it is.
    """
    question, previous = question.strip(), previous.strip()
    if not previous:
        return question
    lead = _LEAD.match(question)
    led = lead is not None and bool(lead.group(0).strip())
    fragment = question[lead.end() :] if lead else question
    fragment = fragment.strip().strip("?!.,;:").strip()
    words = _WORD.findall(fragment)
    if not words:
        return question
    if _MORE.fullmatch(fragment) or _MORE.fullmatch(question.strip().strip("?!.")):
        return previous
    asking = words[0].lower() in QUESTION_WORDS
    if all(w.lower() in QUESTION_WORDS for w in words) and len(words) <= 2:
        return f"{fragment[0].upper()}{fragment[1:]}: {previous}"
    elliptical = not asking and (
        (led and len(words) <= MAX_FRAGMENT_WORDS) or len(_WORD.findall(question)) <= 3
    )
    if elliptical:
        return _substitute(fragment, previous)
    return _about(question, previous)


def _substitute(fragment: str, previous: str) -> str:
    """`previous` with `fragment` in place of its time or its first name, or added to it."""
    stem = previous.rstrip().rstrip("?!.").rstrip()
    if _TIME_ONLY.fullmatch(fragment):
        replaced, count = _TIME_IN.subn(" " + fragment, stem, count=1)
        return (replaced if count else f"{stem} {fragment}") + "?"
    if any(c.isupper() for c in fragment):
        names = _names(stem)
        preposition = _PREPOSITION.match(fragment)
        if preposition:  # "and in France?": the name after the same word
            word = preposition.group(1).lower()
            names = [(s, e) for s, e in names if stem[:s].rstrip().lower().endswith(" " + word)]
            fragment = fragment[preposition.end() :]
        if names:
            start, end = names[0]
            suffix = "'s" if _POSSESSIVE.search(stem[start:end]) else ""
            return f"{stem[:start]}{fragment}{suffix}{stem[end:]}?"
        if preposition:
            fragment = preposition.group(0) + fragment
    return f"{stem}: {fragment}?"


def _about(question: str, previous: str) -> str:
    """`question`, told whom its "he", "it" or "they" is: the names in `previous`."""
    words = {w.lower() for w in _WORD.findall(question)}
    if not words & PRONOUNS or _names(question):
        return question
    stem = previous.rstrip().rstrip("?!.").rstrip()
    names = [stem[s:e] for s, e in _names(stem)]
    subject = ", ".join(dict.fromkeys(_ARTICLE.sub("", _POSSESSIVE.sub("", n)) for n in names))
    return f"{question} (about {subject or stem})"


def _names(text: str) -> list[tuple[int, int]]:
    """Where the names are in `text`: capitalised words, not a question's first word."""
    spans = []
    for match in _NAME.finditer(text):
        start, end = match.span()
        name = match.group(0)
        first = name.split()[0]
        if start == 0 and first.lower() in QUESTION_WORDS | {"the", "a", "an", "i"}:
            rest = name[len(first) :].lstrip()
            if not rest or not rest[0].isupper():
                continue
            start = end - len(rest)
        if name.lower().startswith("the ") and len(name) == 3:
            continue
        spans.append((start, end))
    return spans


CONTEXTUALIZE = """\
Given a chat history and the latest user question which might reference context in the \
chat history, formulate a standalone question which can be understood without the chat \
history. Do NOT answer the question, just reformulate it if needed and otherwise return it \
as is. Reply with the question only."""


class LlmRewriter:
    """A chat model rewrites the follow-up (LangChain's history-aware pattern); on any
    failure, a timeout or an unusable reply, `fallback` does, and one log line says so."""

    def __init__(
        self, model: BaseChatModel, *, timeout: float, fallback: Rewriter | None = None
    ) -> None:
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", CONTEXTUALIZE),
                MessagesPlaceholder("chat_history"),
                ("human", "{input}"),
            ]
        )
        self.chain = prompt | model | StrOutputParser()
        self.timeout = timeout
        self.fallback = fallback or RuleRewriter()

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        inputs = {"chat_history": _messages(history), "input": question}
        try:
            reply = call_model(lambda: self.chain.invoke(inputs), self.timeout)
        except ModelCallError as exc:
            log.warning("language model: %s; follow-up rewritten by rule", exc)
            return self.fallback.standalone(question, history)
        rewritten = plain(reply if isinstance(reply, str) else "").strip().strip('"“”')
        if not rewritten or len(rewritten) > MAX_REWRITE_CHARS:
            log.warning("language model: unusable rewrite; follow-up rewritten by rule")
            return self.fallback.standalone(question, history)
        return rewritten


def _messages(history: Sequence[Turn]) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage

    messages: list[BaseMessage] = []
    for turn in history:
        messages += [HumanMessage(turn.question), AIMessage(turn.answer)]
    return messages


def default_rewriter(model: BaseChatModel | None, timeout: float) -> Rewriter:
    """The model's rewriter (falling back on the rule) when there is a model, else the rule."""
    if model is None:
        return RuleRewriter()
    return LlmRewriter(model, timeout=timeout)
