"""Every citation checked: a model's structured answer, verified against the passages it cites.

The model sees the numbered passages and returns an `LlmAnswer`: short claims, each with the
numbers of the passages that support it and the exact words it rests on. `check` keeps a
cited number only if that passage exists and holds the quote (after `normalise`); a claim
left with no verified source is dropped (the quote check). A claim whose quote verified is
then checked itself (`index.answer.claims`, the claim check): every figure in its sentence
must be in its quote and every name in its quote or cited passages, and the sentence or its
quote must share a word with what it cites, and it or what it cites a word with the
question; one that fails is dropped too, and counted
apart. `verified_answer` builds the `Answer` a user sees
from what remains, sources renumbered in order of first citation; `answer_or_fallback`
gives the offline answer instead when nothing remains.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from index.answer.claims import grounding, shares_a_term
from index.answer.types import (
    MODE_LLM,
    MODEL_NOT_COVERED,
    NO_CLAIMS,
    NOT_COVERED,
    NOTHING_VERIFIED,
    Answer,
    Citation,
)
from index.records import Hit

MIN_QUOTE_WORDS = 3
"""A shorter quote ("Luke Humphries", "the final") occurs in many passages by chance and
says nothing about whether the passage supports the claim; three words is the shortest
phrase that does ("won the final")."""

MAX_CLAIMS = 8
"""The most claims shown: the model is asked for a few short sentences. Those past it are
dropped (and counted), so that a reply of thousands of claims never reaches a user."""
MAX_CLAIM_CHARS = 400
"""The longest claim shown, in characters: a short sentence is well under it."""
MAX_QUOTE_CHARS = 2_000
"""The longest quote checked: no passage is longer (a chunk is at most the model's 256
tokens), so a longer one cannot be in it, and is not read."""

# Why a claim was dropped.
TOO_MANY = f"more than {MAX_CLAIMS} claims"
TOO_LONG = f"sentence or quote too long (over {MAX_CLAIM_CHARS} or {MAX_QUOTE_CHARS} characters)"
NO_TEXT = "no sentence"
NO_QUOTE = f"quote shorter than {MIN_QUOTE_WORDS} words"
NO_SOURCE = "no cited passage exists and holds the quote"
# ... and why a claim whose quote verified was dropped: the claim check.
UNGROUNDED = "a figure or name in the sentence is not in its quote or cited passage"
UNRELATED = "the sentence shares no word with its quote or cited passage"
OFF_QUESTION = "no word of the question is in the sentence, its quote or cited passage"
CLAIM_CHECK = (UNGROUNDED, UNRELATED, OFF_QUESTION)

_QUOTES = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"} | {
    c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
}
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
_MARKER = re.compile(r"\s*\[\s*\d+\s*\]")
_EDGES = " \"'"


class Claim(BaseModel):
    """One short sentence of the answer, the passages that support it and the exact words
    it rests on."""

    text: str = Field(
        description="One short sentence answering part of the question, in your own words. "
        "Do not put passage numbers in it."
    )
    sources: list[int] = Field(
        description="The numbers of the passages (as shown, starting at 1) that support this "
        "sentence."
    )
    quote: str = Field(
        description="The exact words, copied from the passages cited, that this sentence "
        "rests on: at least three words, no ellipsis, holding every number, amount, "
        "percentage and date the sentence states. Cite only passages holding these words."
    )


class LlmAnswer(BaseModel):
    """The answer to the question, from the numbered passages only."""

    not_covered: bool = Field(
        description="True if the passages do not answer the question; then give no claims."
    )
    claims: list[Claim] = Field(
        description="The answer as short sentences, each supported by the passages it cites; "
        "none if the passages do not answer the question."
    )


@dataclass(frozen=True)
class Support:
    """A passage that holds a claim's quote: its index in the hits (0-based) and where the
    quote is in its original text."""

    hit_index: int
    span: tuple[int, int]


@dataclass(frozen=True)
class Verified:
    """A claim with at least one passage holding its quote, in the order the model cited."""

    text: str
    support: tuple[Support, ...]


@dataclass(frozen=True)
class Dropped:
    """A claim that was not shown, and why; `missing`, for an `UNGROUNDED` one, the figures
    and names it states that what it cites does not."""

    claim: Claim
    reason: str
    missing: tuple[str, ...] = ()

    @property
    def by_claim_check(self) -> bool:
        """Dropped although its quote verified: its sentence said more, or something else."""
        return self.reason in CLAIM_CHECK


@dataclass(frozen=True)
class Checked:
    """What survived the check, and what did not."""

    not_covered: bool
    claims: tuple[Verified, ...]
    dropped: tuple[Dropped, ...]

    @property
    def made(self) -> int:
        """The claims checked: those of an answer that says not covered are not."""
        return len(self.claims) + len(self.dropped)

    @property
    def ungrounded(self) -> int:
        """The claims dropped by the claim check (their quotes verified)."""
        return sum(1 for d in self.dropped if d.by_claim_check)


def normalise(text: str) -> tuple[str, list[int]]:
    """`text` folded for comparison, and for each of its characters the index in `text` it
    came from.

    Compatibility forms are folded (NFKD, character by character so that every folded
    character maps back to one original: comparing two folded strings is comparing their
    NFKC forms), curly quotes become straight ones, dashes and minus signs a hyphen, runs
    of whitespace one space, and case is folded: a model that capitalises the first word of
    a quote taken from mid-sentence, or writes "’" for "'", still quotes the same words.
    """
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for c in unicodedata.normalize("NFKD", char).casefold():
            c = _QUOTES.get(c) or _DASHES.get(c) or (" " if c.isspace() else c)
            if c == " " and (not folded or folded[-1] == " "):
                continue
            folded.append(c)
            origin.append(i)
    return "".join(folded), origin


def find_quote(quote: str, passage: str) -> tuple[int, int] | None:
    """The span in `passage` of the first occurrence of `quote` as whole words, both
    normalised, or None."""
    needle = normalise(quote)[0].strip(_EDGES)
    if not needle:
        return None
    hay, origin = normalise(passage)
    start = hay.find(needle)
    while start != -1:
        end = start + len(needle)
        before = hay[start - 1] if start else " "
        after = hay[end] if end < len(hay) else " "
        if not (needle[0].isalnum() and before.isalnum()) and not (
            needle[-1].isalnum() and after.isalnum()
        ):
            return origin[start], origin[end - 1] + 1
        start = hay.find(needle, start + 1)
    return None


def check(
    answer: LlmAnswer,
    hits: Sequence[Hit],
    question: str | None = None,
    *,
    claims: bool = True,
) -> Checked:
    """Each claim of `answer` with the passages of `hits` that verify it.

    Args:
        answer: the model's structured answer; its source numbers count from 1 over `hits`.
        hits: the passages shown to the model, in the order they were numbered.
        question: the question asked; None: claims are not checked against it.
        claims: False: the quote check only, no claim check (as before issue 29; for
            measuring what the claim check does).

    Returns:
        The claims with at least one cited passage that exists and holds the quote (a
        claim's other citations are left out) and whose sentence states nothing more, and
        the claims dropped: past the first `MAX_CLAIMS`, a sentence or quote too long to be
        one, no sentence once any passage numbers written in it are removed, a quote shorter
        than `MIN_QUOTE_WORDS`, or no cited passage holding it (the quote check); a figure
        or name in the sentence not in what it cites (`UNGROUNDED`), a sentence sharing no
        word with what it cites (`UNRELATED`), or, with `question`, none of the sentence,
        quote and cited passages sharing a word with it (`OFF_QUESTION`) (the claim check).
    """
    kept: list[Verified] = []
    dropped: list[Dropped] = []
    for i, claim in enumerate([] if answer.not_covered else answer.claims):
        if i >= MAX_CLAIMS:
            dropped.append(Dropped(claim, TOO_MANY))
            continue
        if len(claim.text) > MAX_CLAIM_CHARS or len(claim.quote) > MAX_QUOTE_CHARS:
            dropped.append(Dropped(claim, TOO_LONG))
            continue
        text = _MARKER.sub("", claim.text).strip()
        if not text:
            dropped.append(Dropped(claim, NO_TEXT))
            continue
        if len(normalise(claim.quote)[0].strip(_EDGES).split()) < MIN_QUOTE_WORDS:
            dropped.append(Dropped(claim, NO_QUOTE))
            continue
        support = _support(claim, hits)
        if not support:
            dropped.append(Dropped(claim, NO_SOURCE))
            continue
        cited = [_with_title(hits[s.hit_index]) for s in support]
        failed = claim_check(claim, text, cited, question) if claims else None
        if failed is not None:
            dropped.append(failed)
        else:
            kept.append(Verified(text, tuple(support)))
    return Checked(answer.not_covered, tuple(kept), tuple(dropped))


def _support(claim: Claim, hits: Sequence[Hit]) -> list[Support]:
    """The passages `claim` cites that exist and hold its quote, in the order cited."""
    support: list[Support] = []
    for n in dict.fromkeys(claim.sources):
        if not 1 <= n <= len(hits):
            continue
        span = find_quote(claim.quote, hits[n - 1].passage.chunk.text)
        if span is not None:
            support.append(Support(n - 1, span))
    return support


def _with_title(hit: Hit) -> str:
    """A passage's text after its article's title: the model is shown both."""
    return f"{hit.passage.article.title}\n{hit.passage.chunk.text}"


def claim_check(
    claim: Claim, text: str, cited: Sequence[str], question: str | None
) -> Dropped | None:
    """Why `claim`, whose quote verified in the passages `cited`, is not shown, or None.

    Its sentence `text` (markers removed) states a figure its quote does not hold or a name
    neither its quote nor `cited` (each passage after its article's title) holds
    (`UNGROUNDED`, `index.answer.claims.grounding`), shares no word with them (`UNRELATED`),
    or none of it, its quote and `cited` shares a word with `question` (`OFF_QUESTION`; not
    checked when `question` is None).
    """
    missing = grounding(text, claim.quote, cited).missing
    if missing:
        return Dropped(claim, UNGROUNDED, missing)
    if not shares_a_term(text, [claim.quote, *cited]):
        return Dropped(claim, UNRELATED)
    if question is not None and not shares_a_term(
        question, [text, claim.quote, *cited], asking=True
    ):
        return Dropped(claim, OFF_QUESTION)
    return None


def verified_answer(question: str, checked: Checked, hits: Sequence[Hit]) -> Answer | None:
    """The `Answer` made of the verified claims, or None if none is left.

    Each claim's sentence is followed by its sources' markers ("… [1][2]"); sources are
    numbered in order of first citation, each highlighting the first verified quote in it.
    `ranked` lists the cited passages first, then the others in their order.
    """
    if not checked.claims:
        return None
    numbers: dict[int, int] = {}  # hit index -> source number
    highlights: dict[int, tuple[int, int]] = {}
    sentences = []
    for claim in checked.claims:
        for s in claim.support:
            numbers.setdefault(s.hit_index, len(numbers) + 1)
            highlights.setdefault(s.hit_index, s.span)
        markers = "".join(f"[{n}]" for n in sorted(numbers[s.hit_index] for s in claim.support))
        sentences.append(f"{claim.text} {markers}")
    citations = [
        replace(Citation.of(hits[i], n), highlight=highlights[i]) for i, n in numbers.items()
    ]
    others = [i for i in range(len(hits)) if i not in numbers]
    ranked = citations + [
        Citation.of(hits[i], n) for n, i in enumerate(others, start=len(citations) + 1)
    ]
    return Answer(
        question,
        True,
        " ".join(sentences),
        citations,
        ranked=ranked,
        mode=MODE_LLM,
        dropped_claims=len(checked.dropped),
        claims=checked.made,
        ungrounded_claims=checked.ungrounded,
    )


def answer_or_fallback(
    question: str, answer: LlmAnswer, hits: Sequence[Hit], offline: Answer
) -> Answer:
    """The model's answer, every claim checked (`check`), or `offline` (the extractive
    answer) with the reason in `fallback`.

    When the model and the offline step disagree, a model that says nothing never replaces
    an offline answer that says something: the model's "not covered" is shown only when the
    offline answer is not an outright one (a hedge or "not covered": the model read the
    passages, and the offline step was not sure either); over an outright one, `offline` is
    shown (`MODEL_NOT_COVERED`). A reply with no claims that does not say "not covered" gives
    `offline` (`NO_CLAIMS`); one none of whose claims survives the check too
    (`NOTHING_VERIFIED`). `claims`, `dropped_claims` and `ungrounded_claims` count the claims
    checked, not shown, and not shown by the claim check.
    """
    checked = check(answer, hits, question)
    if checked.not_covered:
        if offline.found:
            return replace(offline, fallback=MODEL_NOT_COVERED)
        return Answer(question, False, NOT_COVERED, mode=MODE_LLM)
    if not checked.made:
        return replace(offline, fallback=NO_CLAIMS)
    verified = verified_answer(question, checked, hits)
    if verified is not None:
        return verified
    return replace(
        offline,
        dropped_claims=len(checked.dropped),
        claims=checked.made,
        ungrounded_claims=checked.ungrounded,
        fallback=NOTHING_VERIFIED,
    )
