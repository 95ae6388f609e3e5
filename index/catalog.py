"""The catalog: which articles and chunks the index holds, and what built it (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.chunks import Chunk
from index.corpus.article import Article

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
    text TEXT NOT NULL,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
-- An article's story signature goes with it when it is removed or written again (REPLACE
-- deletes the old row, and the cascade with it).
CREATE TABLE IF NOT EXISTS stories (
    article_id TEXT PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    signature BLOB NOT NULL,
    story TEXT
);
CREATE INDEX IF NOT EXISTS stories_story ON stories(story);
"""


def read_only_connection(path: Path) -> sqlite3.Connection:
    """The SQLite file at `path`, opened so that nothing is written beside it.

    A file in WAL mode (the feedback log; a catalog from before generations) cannot be opened
    read-only in a folder its reader may not write while no writer has it open: SQLite needs
    to create its `-shm` file. Without a `-wal` file no writer has it open and there is
    nothing to replay, so it is read as immutable then (a writer that opens it meanwhile goes
    unseen; nothing writes an old catalog any more: a reindex copies it into a generation).
    """
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file
        return db
    except sqlite3.OperationalError:
        db.close()
        if path.with_name(path.name + "-wal").exists():
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)


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
    # The story it is one copy of (`index.stories`): the id it shares with its syndicated
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


class Catalog:
    """SQLite tables of articles, chunks (with their vectors) and build metadata.

    The catalog of a generation is the whole truth about it: the vector store and BM25 are
    built from it, so a generation can always be checked and rebuilt from its catalog alone.
    """

    def __init__(self, path: Path, *, writable: bool = True) -> None:
        """Open (or create) the catalog at `path`; `writable=False` opens it read-only, as
        readers open a complete generation."""
        self.path = path
        if not writable:
            self._db = read_only_connection(path)
            self._db.row_factory = sqlite3.Row
            self._stories = self._has_table("stories")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(chunks)")}
        if "vector" not in columns:  # a catalog from before vectors were kept in it
            self._db.execute("ALTER TABLE chunks ADD COLUMN vector BLOB")
        self._stories = True

    def _has_table(self, name: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self._db.close()

    def seal(self) -> None:
        """Make the catalog one self-contained file, for a generation nobody writes again."""
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("VACUUM")

    def copy_to(self, path: Path) -> Catalog:
        """A consistent copy of this catalog at `path` (SQLite's online backup), opened."""
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()
        return Catalog(path)

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
        self,
        articles: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]],
        removed: Sequence[str],
        now: str,
    ) -> None:
        """In one transaction: drop `removed` articles, (re)write the given ones and chunks.

        Each article comes with its chunks and their vectors (one row per chunk).
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for batch in _batches(list(removed), 500):
                marks = ",".join("?" * len(batch))
                db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", batch)
                db.execute(f"DELETE FROM articles WHERE id IN ({marks})", batch)
            for article, chunks, vectors in articles:
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
                    'INSERT INTO chunks(id, article_id, ord, start, "end", text, vector) '
                    "VALUES (?,?,?,?,?,?,?)",
                    [
                        (c.id, c.article_id, c.ord, c.start, c.end, c.text, _blob(v))
                        for c, v in zip(chunks, vectors, strict=True)
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        """Chunk id → passage (chunk and article), for the ids that exist."""
        out: dict[str, Passage] = {}
        for batch in _batches(list(chunk_ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                'SELECT c.id AS cid, c.article_id, c.ord, c.start, c."end", c.text, '
                f"{self._article_columns} FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"{self._story_join} WHERE c.id IN ({marks})",
                batch,
            )
            for r in rows:
                chunk = Chunk(r["cid"], r["article_id"], r["ord"], r["start"], r["end"], r["text"])
                out[chunk.id] = Passage(chunk, _article_record(r))
        return out

    def pieced_articles(self, article_ids: Iterable[str]) -> list[Article]:
        """The given articles as indexed, each text pieced together from its chunks.

        Chunks cover all of an article's text but the whitespace between some of them
        (the splitter strips it): a one-character gap becomes a space, a longer one line
        breaks, so every chunk sits at its offsets again. For an article whose file can no
        longer be read, this is what is left to chunk anew.
        """
        out: list[Article] = []
        for article_id in article_ids:
            row = self._db.execute("SELECT * FROM articles WHERE id = ?", (article_id,))
            record = row.fetchone()
            if record is None:
                continue
            text: list[str] = []
            end = 0
            for chunk in self._db.execute(
                'SELECT start, "end", text FROM chunks WHERE article_id = ? ORDER BY ord',
                (article_id,),
            ):
                start, stop, piece = chunk
                if start > end:
                    gap = start - end
                    text.append(" " if gap == 1 else "\n" * gap)
                if stop > end:
                    text.append(piece[max(end - start, 0) :])
                    end = stop
            if not text:
                continue
            out.append(
                Article(
                    id=record["id"],
                    title=record["title"],
                    text="".join(text),
                    path=record["path"],
                    source=record["source"],
                    url=record["url"],
                    published=record["published"],
                    author=record["author"],
                )
            )
        return out

    def iter_chunk_texts(self) -> Iterator[tuple[str, str, str]]:
        """(chunk id, article title, chunk text) for every chunk, in chunk-id order."""
        rows = self._db.execute(
            "SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id "
            "ORDER BY c.id"
        )
        for r in rows:
            yield r[0], r[1], r[2]

    def set_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors for existing chunks (when an index from before is carried over)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "UPDATE chunks SET vector = ? WHERE id = ?",
                [(_blob(v), cid) for cid, v in vectors.items()],
            )
            self._db.execute("COMMIT")
        except BaseException:
            _rollback(self._db)
            raise

    def dimension(self) -> int | None:
        """The length of the vectors kept (None with none)."""
        row = self._db.execute(
            "SELECT length(vector) FROM chunks WHERE vector IS NOT NULL LIMIT 1"
        ).fetchone()
        return None if row is None else int(row[0]) // 4

    def articles_missing_vectors(self) -> set[str]:
        """Articles with a chunk that has no vector."""
        rows = self._db.execute("SELECT DISTINCT article_id FROM chunks WHERE vector IS NULL")
        return {r[0] for r in rows}

    def iter_vectors(
        self, batch: int, article_ids: Iterable[str] | None = None
    ) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        """(chunk ids, vectors, store metadata) of every chunk with a vector (of the given
        articles only, if any are given), `batch` at a time."""
        query = (
            "SELECT c.id, c.vector, c.article_id, c.ord, a.source, a.published "
            "FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.vector IS NOT NULL"
        )
        if article_ids is None:
            chosen: Iterator[list[str]] = iter([[]])
        else:
            chosen = _batches(sorted(article_ids), 500)
        for some in chosen:
            if article_ids is None:
                rows = self._db.execute(query + " ORDER BY c.id")
            else:
                marks = ",".join("?" * len(some))
                rows = self._db.execute(f"{query} AND c.article_id IN ({marks})", some)
            while got := rows.fetchmany(batch):
                ids = [r[0] for r in got]
                vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in got])
                metas = [_store_meta(r[2], r[3], r[4], r[5]) for r in got]
                yield ids, vectors, metas

    def articles(self) -> list[ArticleRecord]:
        rows = self._db.execute(
            f"SELECT {self._article_columns} FROM articles a {self._story_join} ORDER BY a.id"
        )
        return [_article_record(r) for r in rows]

    # -- stories (syndicated copies, `index.stories`) ------------------------------------------
    @property
    def _article_columns(self) -> str:
        return "a.*, s.story" if self._stories else "a.*, NULL AS story"

    @property
    def _story_join(self) -> str:
        return "LEFT JOIN stories s ON s.article_id = a.id" if self._stories else ""

    def copies(self, story_ids: Iterable[str]) -> dict[str, list[ArticleRecord]]:
        """Story id → its articles, for the given stories that have more than one."""
        if not self._stories:
            return {}
        out: dict[str, list[ArticleRecord]] = {}
        for batch in _batches(sorted(set(story_ids)), 500):
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT a.*, s.story FROM stories s JOIN articles a ON a.id = s.article_id "
                f"WHERE s.story IN ({marks}) ORDER BY a.id",
                batch,
            )
            for r in rows:
                out.setdefault(r["story"], []).append(_article_record(r))
        return {story: found for story, found in out.items() if len(found) > 1}

    def signatures(self) -> dict[str, bytes]:
        """Article id → its stored story signature."""
        rows = self._db.execute("SELECT article_id, signature FROM stories")
        return {r[0]: r[1] for r in rows}

    def articles_missing_signatures(self) -> set[str]:
        """Articles without a stored story signature."""
        rows = self._db.execute(
            "SELECT a.id FROM articles a LEFT JOIN stories s ON s.article_id = a.id "
            "WHERE s.article_id IS NULL"
        )
        return {r[0] for r in rows}

    def set_stories(self, signatures: dict[str, bytes], stories: dict[str, str]) -> None:
        """Store new signatures (article id → signature), then every article's story (article
        id → story id), in one transaction; `signatures` empty drops all first."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO stories(article_id, signature, story) VALUES (?, ?, NULL)",
                list(signatures.items()),
            )
            db.executemany(
                "UPDATE stories SET story = ? WHERE article_id = ?",
                [(story, aid) for aid, story in stories.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def drop_signatures(self) -> None:
        """Forget every signature (they were made another way)."""
        self._db.execute("DELETE FROM stories")

    def copy_count(self) -> tuple[int, int]:
        """(articles that are a copy of another, stories with copies)."""
        if not self._stories:
            return 0, 0
        row = self._db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT story) FROM stories WHERE story IN "
            "(SELECT story FROM stories GROUP BY story HAVING COUNT(*) > 1)"
        ).fetchone()
        return int(row[0]) - int(row[1]), int(row[1])

    def counts(self) -> tuple[int, int]:
        """(articles, chunks)."""
        a = self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        c = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(a), int(c)


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction; SQLite has already undone it after a full disk."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _store_meta(
    article_id: str, ord_: int, source: str | None, published: str | None
) -> dict[str, Any]:
    """What the vector store keeps beside each vector."""
    meta: dict[str, Any] = {"article_id": article_id, "ord": ord_}
    if source:
        meta["source"] = source
    if published:
        meta["published"] = published
    return meta


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
        story=r["story"],
    )


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
