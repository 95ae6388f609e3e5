"""Retrieved passages made by hand, for the composer's and the re-ranker's tests."""

from __future__ import annotations

from index.records import ArticleRecord, Chunk, Hit, Passage

# The keys of an answer's JSON (`newsbot ask --json`, `Answer.to_dict`).
ANSWER_KEYS = frozenset(
    {
        "question",
        "found",
        "hedged",
        "answer",
        "answer_span",
        "confidence",
        "citations",
        "latency_ms",
        "mode",
        "dropped_claims",
        "follow_up",
        "claims",
        "fallback",
    }
)
# The keys of each of its citations; `also_reported_by` lists the story's other copies.
CITATION_KEYS = frozenset(
    {
        "n",
        "article_id",
        "title",
        "source",
        "url",
        "published",
        "passage",
        "highlight",
        "role",
        "also_reported_by",
    }
)


def make_hit(n: int, text: str, score: float, *, ord_: int = 0, dense: float | None = 0.5) -> Hit:
    """A hit on chunk `ord_` of article `a{n}.md`, whose whole text is `text`."""
    article = ArticleRecord(
        id=f"a{n}.md",
        path=f"a{n}.md",
        content_hash="x",
        title=f"Article {n}",
        source=None,
        url=None,
        published=None,
        author=None,
        n_chunks=ord_ + 1,
        indexed_at="2024-01-01T00:00:00",
    )
    chunk = Chunk(f"c{n}", article.id, ord_, 0, len(text), text)
    return Hit(Passage(chunk, article), score, dense, None)
