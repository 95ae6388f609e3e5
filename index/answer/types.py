"""`Answer` and `Citation`: what newsbot says to a question, and the `Answerer` that says it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from index.records import Hit

NOT_COVERED = "The indexed articles don't cover this question."
HEDGE = "The articles don't say for sure. The closest they come: "

# A citation's role: the answer is quoted from it; it names the same answer; a hedge quotes
# it (it may not hold the answer); or it was retrieved and bears on nothing quoted (the
# Discord bot's More sources).
SUPPORT, FURTHER_READING, CLOSEST, RETRIEVED = "support", "further reading", "closest", "retrieved"

# How an answer was made: quoted by the extractive answer step, or written by a language
# model with every citation checked (`index.answer.citations`).
MODE_EXTRACTIVE, MODE_LLM = "extractive", "llm"

# Why a language model's answer was not shown and the offline one was (`Answer.fallback`):
# the model failed (an error, a 429, a timeout, output that is not an `LlmAnswer`); none of
# its claims verified; there were no passages to ask it about; it said the passages do not
# cover the question while the offline answer step answered outright; or it gave no claims
# and did not say the passages do not cover the question. (A model saying "not covered" when
# the offline step only hedged or found nothing is its answer: "not covered", `mode` llm.)
MODEL_FAILED = "model failed"
NOTHING_VERIFIED = "nothing verified"
NO_PASSAGES = "no passages"
MODEL_NOT_COVERED = "said not covered"
NO_CLAIMS = "no claims"
FALLBACKS = (MODEL_FAILED, NOTHING_VERIFIED, NO_PASSAGES, MODEL_NOT_COVERED, NO_CLAIMS)


@dataclass(frozen=True)
class Copy:
    """Another outlet's copy of a cited article: the same story, syndicated
    (`index.build.stories`)."""

    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None


@dataclass(frozen=True)
class Citation:
    """A numbered source: the article and the quoted passage; `highlight` marks the sentence
    that bears on the answer; `role` says how (`SUPPORT`, `FURTHER_READING`, `CLOSEST`,
    `RETRIEVED`). `also_reported_by` are the story's other copies (earliest first), which
    are not cited apart."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    passage: str
    highlight: tuple[int, int] | None = None
    role: str = SUPPORT
    also_reported_by: tuple[Copy, ...] = ()

    @classmethod
    def of(cls, hit: Hit, n: int, role: str = SUPPORT) -> Citation:
        """Citation `n` of the retrieved passage `hit`, with its story's other copies."""
        article = hit.passage.article
        return cls(
            n=n,
            article_id=article.id,
            title=article.title,
            source=article.source,
            url=article.url,
            published=article.published,
            passage=hit.passage.chunk.text,
            role=role,
            also_reported_by=tuple(
                Copy(a.id, a.title, a.source, a.url, a.published) for a in hit.copies
            ),
        )


@dataclass(frozen=True)
class Answer:
    """What newsbot says to a question.

    `found`: the answer text is an answer, quoted from source [1]; `answer_span` marks the
    answer itself (a name, number or date) in it. Not found: the text says "not covered"
    (no citations) or, `hedged`, that the articles don't say for sure and what the two
    closest passages say. `mode` says how it was made (`MODE_EXTRACTIVE`, `MODE_LLM`);
    `claims` is how many claims a model made (0 without one) and `dropped_claims` how many
    of them were not shown, of which `ungrounded_claims` by the claim check (their quote
    verified, but the sentence stated a figure or name it does not hold, or bore not on the
    question: `index.answer.claims`), the others by the quote check; `fallback` (one of `FALLBACKS`)
    why a model's answer was not shown and the offline one was (None when it was shown, or
    without a model). `follow_up` is what the user typed when it was a follow-up rewritten
    to stand alone (`index.answer.conversation`): `question` is then the rewritten question, the
    one answered. `ranked` (not shown, not in `to_dict`) is every passage retrieved in the
    answer step's order, the cited ones first: what the eval's hit@k counts. `more` (not
    shown, not in `to_dict`) is further passages retrieved, none of them in `ranked`, best
    first, when they were asked for (`Newsbot.ask(more=N)`: the bot's More sources).
    """

    question: str
    found: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    latency_ms: float = 0.0
    answer_span: tuple[int, int] | None = None
    confidence: float | None = None
    ranked: list[Citation] = field(default_factory=list, repr=False, compare=False)
    mode: str = MODE_EXTRACTIVE
    dropped_claims: int = 0
    follow_up: str | None = None
    claims: int = 0
    fallback: str | None = None
    more: list[Citation] = field(default_factory=list, repr=False, compare=False)
    ungrounded_claims: int = 0

    @property
    def hedged(self) -> bool:
        return not self.found and bool(self.citations)

    def to_dict(self) -> dict[str, Any]:
        """The `ask --json` object (`ungrounded_claims` only when a language model was asked:
        without one, the object is as before issue 29)."""
        data = asdict(self)
        del data["ranked"], data["more"]
        if self.mode != MODE_LLM and self.fallback is None:  # no model asked: as before it
            del data["ungrounded_claims"]
        data["hedged"] = self.hedged
        data["answer_span"] = list(self.answer_span) if self.answer_span else None
        if self.confidence is not None:
            data["confidence"] = round(self.confidence, 3)
        for citation in data["citations"]:
            highlight = citation.pop("highlight")
            citation["highlight"] = list(highlight) if highlight else None
            citation["also_reported_by"] = list(citation["also_reported_by"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of `to_dict`."""
        citations = [
            Citation(
                **{
                    **c,
                    "highlight": tuple(c["highlight"]) if c.get("highlight") else None,
                    "also_reported_by": tuple(Copy(**o) for o in c.get("also_reported_by", [])),
                }
            )
            for c in data.get("citations", [])
        ]
        span = data.get("answer_span")
        return cls(
            data["question"],
            data["found"],
            data["answer"],
            citations,
            data.get("latency_ms", 0.0),
            answer_span=(span[0], span[1]) if span else None,
            confidence=data.get("confidence"),
            mode=data.get("mode", MODE_EXTRACTIVE),
            dropped_claims=data.get("dropped_claims", 0),
            follow_up=data.get("follow_up"),
            claims=data.get("claims", 0),
            fallback=data.get("fallback"),
            ungrounded_claims=data.get("ungrounded_claims", 0),
        )


class Answerer(Protocol):
    """The answer step: turns the retrieved passages into an `Answer` citing them.

    `Newsbot` is given one; the extractive one (`index.answer.extractive`) quotes a sentence.
    """

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        """An answer to `question` from `hits` (best first) citing at most `limit` of them,
        or the not-covered answer; `asked_on` (an ISO date, None for today) is when it was
        asked."""
        ...
