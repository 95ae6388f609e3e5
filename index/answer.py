"""`Answer` and `Citation`: what newsbot says to a question, and the `Answerer` that says it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from index.retrieval import Hit

NOT_COVERED = "The indexed articles don't cover this question."


@dataclass(frozen=True)
class Citation:
    """A numbered source: the article and the quoted passage; `highlight` marks the support."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    passage: str
    highlight: tuple[int, int] | None = None


@dataclass(frozen=True)
class Answer:
    """What newsbot says to a question."""

    question: str
    found: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `ask --json` object."""
        data = asdict(self)
        for citation in data["citations"]:
            highlight = citation.pop("highlight")
            citation["highlight"] = list(highlight) if highlight else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of `to_dict`."""
        citations = [
            Citation(**{**c, "highlight": tuple(c["highlight"]) if c.get("highlight") else None})
            for c in data.get("citations", [])
        ]
        return cls(
            data["question"],
            data["found"],
            data["answer"],
            citations,
            data.get("latency_ms", 0.0),
        )


class Answerer(Protocol):
    """The answer step: turns the retrieved passages into an `Answer` citing them.

    `Newsbot` is given one; the extractive one (`index.extractive`) quotes a sentence.
    """

    def compose(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An answer to `question` from `hits` (best first), or the not-covered answer."""
        ...
