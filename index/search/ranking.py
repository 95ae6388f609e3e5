"""`Ranking`: every weight the retriever ranks passages by, in one value passed to it.

The defaults are today's tuned values; where each came from is in docs/tuning.md. An ablation
is a changed value (`newsbot eval --set lead_weight=0`), never a source edit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar, get_args, get_type_hints

from index.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Ranking:
    """How hybrid retrieval fuses, lifts, collapses and re-ranks passages.

    Each default says where it came from (the figures are in docs/tuning.md).
    """

    # Passages taken from each side (dense, BM25) before fusion; more when source or date
    # filters will drop some. The first version's choice, not tuned.
    candidates: int = 50
    filtered_candidates: int = 400
    # Reciprocal-rank fusion constant: Cormack et al. 2009's value. Normalised-score fusion
    # and BM25 weighed 1.3x were tried on rtqa-dev and dropped.
    rrf_k: int = 60
    # An article published on the day the question is asked gains `recency_weight` first
    # places in one ranking, halving every `recency_half_life` days (0: off); rtqa-dev hit@1
    # 0.333 -> 0.484 (commit 5293286), +6 questions at hit@1 on held-out weeks.
    recency_weight: float = 1.0
    recency_half_life: float = 7.0
    # At most this many passages from one article; one and three were worse on rtqa-dev.
    max_per_article: int = 2
    # Passages come from at most this many copies of one story (syndicated copies grouped at
    # index time, `index.build.stories`; 0: any number): five copies of a wire story are one
    # source. A product rule (issue 17), not tuned; rtqa-dev figures: docs/stories.md.
    story_copies: int = 1
    # Passages sharing this share of their `shingle`-word shingles are one passage said
    # twice (syndicated copies). The first version's choice, not tuned.
    duplicate_jaccard: float = 0.6
    shingle: int = 5
    # The fused ranking's best `rerank_pool` passages are re-ranked: an article's n-th
    # passage gains lead_weight / n (news puts the facts first), and the passage holding the
    # candidate answer most pooled passages repeat gains `agreement_weight`. rtqa-dev hit@1
    # 0.419 -> 0.462, hit@5 0.753 -> 0.785 (commit a8dffaa); held-out +1 question at @1/3/5.
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
    hints = get_type_hints(type(value))
    own = {f.name: hints[f.name] for f in fields(value)}  # type: ignore[arg-type]
    changes = {name: _typed(own[name], v) for name, v in overrides.items() if name in own}
    return replace(value, **changes)  # type: ignore[type-var]


def _typed(annotation: Any, value: float) -> float | int:
    """`value` as the field's type: an int for `int` and `int | None`, else a float."""
    return int(value) if int in (annotation, *get_args(annotation)) else float(value)
