"""Hybrid retrieval: dense and BM25 candidates, fused, de-duplicated, capped per article,
one copy of each story (syndicated copies: `index.build.stories`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from index.records import ArticleRecord, Hit, Passage
from index.search.candidates import AnswerShape, agreement
from index.search.ranking import Ranking
from index.store.catalog import Catalog
from index.store.segments import SegmentedLexical, SegmentedVectors


@dataclass(frozen=True)
class Filters:
    """Optional limits on which articles may answer."""

    source: str | None = None
    since: str | None = None  # ISO date, inclusive
    until: str | None = None  # ISO date, inclusive
    article_ids: frozenset[str] | None = None  # only these articles

    def __bool__(self) -> bool:
        return bool(self.source or self.since or self.until or self.article_ids is not None)

    def admits(self, article: ArticleRecord) -> bool:
        if self.article_ids is not None and article.id not in self.article_ids:
            return False
        if self.source and (article.source or "").casefold() != self.source.casefold():
            return False
        if (self.since or self.until) and not article.published:
            return False
        if self.since and (article.published or "") < self.since:
            return False
        return not (self.until and (article.published or "") > self.until)


@dataclass
class Retriever:
    """Finds the passages most likely to answer a question."""

    store: SegmentedVectors
    lexical: SegmentedLexical
    catalog: Catalog
    ranking: Ranking = field(default_factory=Ranking)

    def search(
        self,
        question: str,
        query_vector: np.ndarray,
        *,
        k: int,
        filters: Filters | None = None,
        asked_on: str | None = None,
    ) -> list[Hit]:
        """The `k` best passages for `question`, at most `ranking.max_per_article` per article
        and all from one copy of each story (`ranking.story_copies`): the copy whose passage
        ranks best; the story's other copies are the hit's `copies`.

        Args:
            question: the user's words (for BM25).
            query_vector: the question's embedding (for the dense side).
            k: passages wanted.
            filters: source and date limits, applied to candidates (not inside Chroma: its
                metadata filters cost 80-230 ms at 100k chunks).
            asked_on: ISO date the question was asked (default: today); articles known to
                be published later cannot be what it is about (undated articles stay), and
                articles published shortly before it rank higher.
        """
        r = self.ranking
        n = r.filtered_candidates if filters else r.candidates
        dense = dict(self.store.query(query_vector, n))
        lexical = dict(self.lexical.search(question, n))
        fused = self._fused(list(dense), list(lexical))
        passages = self.catalog.passages(list(fused))
        if r.recency_half_life > 0:
            today = asked_on or date.today().isoformat()
            for chunk_id, found in passages.items():
                fused[chunk_id] += self._recency(found.article.published, today)
        hits: list[Hit] = []
        kept = _Variety(r)
        for chunk_id in sorted(fused, key=lambda c: -fused[c]):
            passage = passages.get(chunk_id)
            if passage is None:  # removed by a reindex still being switched in
                continue
            if not _citable(passage.article, filters, asked_on):
                continue
            if kept.admits(passage):
                hits.append(
                    Hit(passage, fused[chunk_id], dense.get(chunk_id), lexical.get(chunk_id))
                )
            if len(hits) >= max(k, r.rerank_pool):
                break
        return self._with_copies(rerank(question, hits, r)[:k], filters, asked_on)

    def _with_copies(
        self, hits: list[Hit], filters: Filters | None, asked_on: str | None
    ) -> list[Hit]:
        """`hits`, each with the other copies of its story that could have been cited."""
        stories = self.catalog.copies(hit.passage.article.story_id for hit in hits)
        out = []
        for hit in hits:
            cited = hit.passage.article
            copies = [
                a
                for a in stories.get(cited.story_id, [])
                if a.id != cited.id and _citable(a, filters, asked_on)
            ]
            copies.sort(key=lambda a: (a.published is None, a.published or "", a.id))
            out.append(replace(hit, copies=tuple(copies)))
        return out

    def _fused(self, *rankings: list[str]) -> dict[str, float]:
        """Reciprocal-rank fusion of chunk-id rankings (best first)."""
        fused: dict[str, float] = {}
        for ranked in rankings:
            for rank, chunk_id in enumerate(ranked):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (self.ranking.rrf_k + rank + 1)
        return fused

    def _recency(self, published: str | None, asked_on: str) -> float:
        """The fusion bonus of an article published on `published`, asked about on `asked_on`."""
        age = _days_between(published, asked_on)
        if age is None or age < 0:
            return 0.0
        r = self.ranking
        return r.recency_weight / (r.rrf_k + 1) * 0.5 ** (age / r.recency_half_life)


def _citable(article: ArticleRecord, filters: Filters | None, asked_on: str | None) -> bool:
    """Whether `article` may answer: `filters` admit it, and it is not known to be published
    after the question was asked (`asked_on`)."""
    if filters and not filters.admits(article):
        return False
    return not (asked_on and (article.published or "") > asked_on)


class _Variety:
    """Which passages may join the answer: at most `max_per_article` from one article and
    `story_copies` articles from one story, and none that repeats (near enough word for
    word) one already taken."""

    def __init__(self, ranking: Ranking) -> None:
        self.ranking = ranking
        self.per_article: dict[str, int] = {}
        self.cited_copies: dict[str, set[str]] = {}  # story id -> its articles cited
        self.shingles: list[set[str]] = []

    def admits(self, passage: Passage) -> bool:
        """Whether `passage` may join those taken so far; if so, it is taken."""
        article_id = passage.article.id
        story = passage.article.story_id
        cited = self.cited_copies.setdefault(story, set())
        most = self.ranking.story_copies
        if article_id not in cited and most and len(cited) >= most:
            return False
        if self.per_article.get(article_id, 0) >= self.ranking.max_per_article:
            return False
        shingles = _shingles(passage.chunk.text, self.ranking.shingle)
        limit = self.ranking.duplicate_jaccard
        if any(_jaccard(shingles, other) >= limit for other in self.shingles):
            return False
        self.shingles.append(shingles)
        cited.add(article_id)
        self.per_article[article_id] = self.per_article.get(article_id, 0) + 1
        return True


def rerank(question: str, hits: list[Hit], ranking: Ranking) -> list[Hit]:
    """`hits` (best fused first) in the order of their fused score relative to the best, plus
    their lead and agreement bonuses (see `Ranking.lead_weight`, `.agreement_weight`)."""
    if not hits:
        return hits
    top = hits[0].score or 1.0
    relative = [hit.score / top for hit in hits]
    shape = AnswerShape(question)
    support = agreement([shape.candidates(hit.passage.chunk.text) for hit in hits], relative)
    scores = [
        score
        + ranking.lead_weight / (hit.passage.chunk.ord + 1)
        + ranking.agreement_weight * agreed
        for hit, score, agreed in zip(hits, relative, support, strict=True)
    ]
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [replace(hits[i], score=scores[i]) for i in order]


def _days_between(earlier: str | None, later: str) -> int | None:
    """Days from one ISO date to another; None if either is missing or malformed."""
    try:
        return (date.fromisoformat(later[:10]) - date.fromisoformat((earlier or "")[:10])).days
    except ValueError:
        return None


_WORD = re.compile(r"\w+")


def _shingles(text: str, size: int) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
