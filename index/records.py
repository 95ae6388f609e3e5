"""The records that cross layers: a chunk, an indexed article, a passage, a retrieved hit.

Plain frozen dataclasses and nothing else (no SQLite, no Chroma): the store fills them, search
ranks them and the answer step cites them, so a layer that only reads them (`Answer`) depends
on no storage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: `article.text[start:end] == text`."""

    id: str
    article_id: str
    ord: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ArticleRecord:
    """An indexed article's metadata, as citations show it."""

    id: str
    path: str
    content_hash: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    author: str | None
    n_chunks: int
    indexed_at: str
    # The story it is one copy of (`index.build.stories`): the id it shares with its syndicated
    # copies; None in an index from before stories (each article is then its own story).
    story: str | None = None

    @property
    def story_id(self) -> str:
        """Its story: its copies' shared id, else its own."""
        return self.story or self.id


@dataclass(frozen=True)
class Passage:
    """An indexed chunk together with its article."""

    chunk: Chunk
    article: ArticleRecord


@dataclass(frozen=True)
class Hit:
    """A retrieved passage and why it was retrieved; `copies` are the other articles of its
    story (syndicated copies that could have been cited instead), earliest first."""

    passage: Passage
    score: float
    dense: float | None
    lexical: float | None
    copies: tuple[ArticleRecord, ...] = ()
