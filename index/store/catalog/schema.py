"""The catalog's tables and its SQLite connection, on which every job of `Catalog` builds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.records import ArticleRecord

ARTICLE_COLUMNS = (
    "id",
    "path",
    "content_hash",
    "title",
    "source",
    "url",
    "published",
    "author",
    "n_chunks",
    "indexed_at",
)
CHUNK_COLUMNS = ("id", "article_id", "ord", "start", "end", "text", "vector")

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
-- A segmented catalog (`Catalog.segments`): the articles of its older segments that this
-- generation no longer holds (removed, or written again in a newer segment), and the story of
-- each article that is a syndicated copy of another (the story's first article has none).
CREATE TABLE IF NOT EXISTS dead (
    segment TEXT NOT NULL,
    article_id TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    PRIMARY KEY (segment, article_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS story_map (article_id TEXT PRIMARY KEY, story TEXT NOT NULL)
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_map_story ON story_map(story);
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


# SQLite's own words for a file that is not (or no longer) a whole database: damage, as
# opposed to a file it may not open (permissions) or a busy one.
DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"})


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite raised `exc` because the file is damaged (cut short, overwritten)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_CORRUPT") or name in DAMAGE_CODES:
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text


def connect(path: Path, *, writable: bool) -> sqlite3.Connection:
    """The catalog at `path`, opened (`writable`: created, and brought up to this schema)."""
    if not writable:
        return read_only_connection(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path.resolve().as_uri(), uri=True, isolation_level=None, check_same_thread=False
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)
    columns = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
    if "vector" not in columns:  # a catalog from before vectors were kept in it
        db.execute("ALTER TABLE chunks ADD COLUMN vector BLOB")
    return db


@dataclass(frozen=True)
class Part:
    """One segment as the catalog's connection sees it: a schema (`main`: this catalog's own
    segment; an attached one for each older segment) and the segment's name."""

    schema: str
    name: str
    stories: bool  # whether it has a `stories` table (not in an index from before them)

    def live(self, column: str) -> str:
        """A condition keeping the rows whose article `column` this generation still holds."""
        if self.schema == "main":
            return "1"
        return f"{column} NOT IN (SELECT article_id FROM main.dead WHERE segment = '{self.name}')"


class Tables:
    """A catalog's connection, and the segments it has attached (`Part`s, its own last)."""

    path: Path
    _db: sqlite3.Connection
    _parts: list[Part]

    def _has_table(self, schema: str, name: str) -> bool:
        row = self._db.execute(
            f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self._db.close()


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction; SQLite has already undone it after a full disk."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def article_record(r: sqlite3.Row) -> ArticleRecord:
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


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
