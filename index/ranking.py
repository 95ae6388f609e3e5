"""`Ranking`: every weight the retriever ranks passages by, in one value passed to it.

The defaults are today's tuned values; where each came from is in docs/tuning.md. An ablation
is a changed value (`newsbot eval --set lead_weight=0`), never a source edit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from index.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Ranking:
    """How hybrid retrieval fuses, lifts, collapses and re-ranks passages.

    Attributes:
        candidates: passages taken from each side (dense, BM25) before fusion.
        filtered_candidates: the same when source or date filters will drop some.
        rrf_k: the reciprocal-rank fusion constant (Cormack et al. 2009).
        recency_weight: an article published on the day the question is asked gains this
            many first places in one ranking...
        recency_half_life: ...halving every this many days (0: no recency lift).
        max_per_article: at most this many passages from one article.
        duplicate_jaccard: passages sharing this much of their word shingles are one
            passage said twice.
        shingle: words in a shingle.
        rerank_pool: the fused ranking's best passages that are re-ranked.
        lead_weight: an article's n-th passage gains lead_weight / n (news puts facts first).
        agreement_weight: the passage holding the candidate answer most pooled passages
            repeat gains this much.
    """

    candidates: int = 50
    filtered_candidates: int = 400
    rrf_k: int = 60
    recency_weight: float = 1.0
    recency_half_life: float = 7.0
    max_per_article: int = 2
    duplicate_jaccard: float = 0.6
    shingle: int = 5
    rerank_pool: int = 30
    lead_weight: float = 0.1
    agreement_weight: float = 0.1

    @classmethod
    def from_settings(cls, settings: Settings) -> Ranking:
        """The defaults, with the weights that are settings taken from `settings`."""
        return cls(
            recency_half_life=settings.recency_half_life,
            max_per_article=settings.max_per_article,
        )


def weight_names(value: Any) -> list[str]:
    """The field names of the weights dataclass `value` (`Ranking`, `Extraction`)."""
    return [f.name for f in fields(value)]


def with_overrides(value: T, overrides: dict[str, float]) -> T:
    """A copy of the weights dataclass `value` with those of `overrides` that name its fields."""
    own = {f.name: f.type for f in fields(value)}  # type: ignore[arg-type]
    changes = {name: _typed(own[name], v) for name, v in overrides.items() if name in own}
    return replace(value, **changes)  # type: ignore[type-var]


def _typed(annotation: object, value: float) -> float | int:
    return int(value) if annotation in (int, "int") else float(value)
