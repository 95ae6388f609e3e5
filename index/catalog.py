"""The catalog: which articles and chunks the index holds, and what built it (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.articles import Article
from index.chunks import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT,
    url TEXT,
    published TEXT,
    author TEXT,
    n_chunks INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
"""


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


@dataclass(frozen=True)
class Passage:
    """An indexed chunk together with its article."""

    chunk: Chunk
    article: ArticleRecord


class Catalog:
    """SQLite tables of articles, chunks and build metadata, in `index_dir/catalog.sqlite`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- build metadata ---------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def index_id(self) -> str:
        """This index's identity, made on first use; it marks the vector collection it owns."""
        value = self.get_meta("index_id")
        if value is None:
            value = uuid.uuid4().hex
            self.set_meta("index_id", value)
        return str(value)

    # -- articles and chunks ----------------------------------------------------------------
    def hashes(self) -> dict[str, tuple[str, str]]:
        """Article id → (content hash, source path)."""
        rows = self._db.execute("SELECT id, content_hash, path FROM articles")
        return {r["id"]: (r["content_hash"], r["path"]) for r in rows}

    def chunk_ids(self, article_ids: Iterable[str] | None = None) -> list[str]:
        """Chunk ids of the given articles (all chunks when None)."""
        if article_ids is None:
            return [r[0] for r in self._db.execute("SELECT id FROM chunks ORDER BY id")]
        ids = list(article_ids)
        out: list[str] = []
        for batch in _batches(ids, 500):
            marks = ",".join("?" * len(batch))
            out.extend(
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM chunks WHERE article_id IN ({marks})", batch
                )
            )
        return out

    def replace_articles(
        self, articles: Sequence[tuple[Article, Sequence[Chunk]]], removed: Sequence[str], now: str
    ) -> None:
        """In one transaction: drop `removed` articles, (re)write the given ones and chunks."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for batch in _batches(list(removed), 500):
                marks = ",".join("?" * len(batch))
                db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", batch)
                db.execute(f"DELETE FROM articles WHERE id IN ({marks})", batch)
            for article, chunks in articles:
                db.execute("DELETE FROM chunks WHERE article_id = ?", (article.id,))
                db.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        article.id,
                        article.path,
                        article.content_hash,
                        article.title,
                        article.source,
                        article.url,
                        article.published,
                        article.author,
                        len(chunks),
                        now,
                    ),
                )
                db.executemany(
                    'INSERT INTO chunks(id, article_id, ord, start, "end", text) '
                    "VALUES (?,?,?,?,?,?)",
                    [(c.id, c.article_id, c.ord, c.start, c.end, c.text) for c in chunks],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        """Chunk id → passage (chunk and article), for the ids that exist."""
        out: dict[str, Passage] = {}
        for batch in _batches(list(chunk_ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                'SELECT c.id AS cid, c.article_id, c.ord, c.start, c."end", c.text, a.* '
                f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})",
                batch,
            )
            for r in rows:
                chunk = Chunk(r["cid"], r["article_id"], r["ord"], r["start"], r["end"], r["text"])
                out[chunk.id] = Passage(chunk, _article_record(r))
        return out

    def iter_chunk_texts(self) -> Iterator[tuple[str, str, str]]:
        """(chunk id, article title, chunk text) for every chunk, in chunk-id order."""
        rows = self._db.execute(
            "SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id "
            "ORDER BY c.id"
        )
        for r in rows:
            yield r[0], r[1], r[2]

    def articles(self) -> list[ArticleRecord]:
        rows = self._db.execute("SELECT * FROM articles ORDER BY id")
        return [_article_record(r) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(articles, chunks)."""
        a = self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        c = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(a), int(c)


def _article_record(r: sqlite3.Row) -> ArticleRecord:
    return ArticleRecord(
        id=r["id"],
        path=r["path"],
        content_hash=r["content_hash"],
        title=r["title"],
        source=r["source"],
        url=r["url"],
        published=r["published"],
        author=r["author"],
        n_chunks=r["n_chunks"],
        indexed_at=r["indexed_at"],
    )


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
