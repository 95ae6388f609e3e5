"""The catalog: which articles and chunks the index holds, and what built it (SQLite)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import SegmentMissingError
from index.ingest.corpus.article import Article
from index.records import ArticleRecord, Chunk, Passage
from index.store.layout import sync_folder

# A segment's folder under the index folder's `segments/`, numbered as the generation that
# wrote it.
SEGMENT_NAME = re.compile(r"seg-\d{6}")
SEGMENTS_FOLDER = "segments"


def segment_name(number: int) -> str:
    """The segment written by generation `number`."""
    return f"seg-{number:06d}"


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


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of a generation, as a reader opens it: its folder (catalog, BM25, and the
    embedded store's Chroma), its vector collection, and its chunks the generation no longer
    holds."""

    name: str
    folder: Path
    collection: str | None
    dead_chunks: frozenset[str]
    chunks: int


@dataclass(frozen=True)
class _Part:
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


class Catalog:
    """SQLite tables of articles, chunks (with their vectors) and build metadata.

    The catalog of a generation is the whole truth about it: the vector store and BM25 are
    built from it, so a generation can always be checked and rebuilt from its catalog alone.

    A generation is made of segments (docs/architecture.md, "Segments"): its catalog holds
    its own segment's articles and chunks (what its reindex changed, or what it merged), and
    names the older segments it shares with the generations before it (`meta.segments`,
    folders beside it, never written again), and the articles of theirs it no longer holds
    (`dead`). Opening a catalog attaches those segments read-only: every read below answers
    for the whole generation, minus the dead. Writes go to its own segment only. A catalog
    without `meta.segments` (built before segments) is one segment, the whole generation.
    """

    def __init__(self, path: Path, *, writable: bool = True) -> None:
        """Open (or create) the catalog at `path`; `writable=False` opens it read-only, as
        readers open a complete generation."""
        self.path = path
        self._writable = writable
        if not writable:
            self._db = read_only_connection(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path.resolve().as_uri(), uri=True, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
            if "vector" not in columns:  # a catalog from before vectors were kept in it
                self._db.execute("ALTER TABLE chunks ADD COLUMN vector BLOB")
        self._db.row_factory = sqlite3.Row
        self._parts: list[_Part] = []
        self._attach()

    # -- segments ---------------------------------------------------------------------------------
    @property
    def segmented(self) -> bool:
        """Whether this catalog is a segmented generation's (else one from before segments)."""
        return self._segmented

    def _attach(self) -> None:
        """Attach the segments `meta.segments` names (read-only), detaching others.

        The segments hold the generation's articles; while a generation is built (until
        `seal_into`), this catalog's own tables hold its new segment's.
        """
        for part in self._parts:
            if part.schema != "main":
                self._db.execute(f"DETACH DATABASE {part.schema}")
        names = self.get_meta("segments")
        self._segmented = names is not None
        self._parts = []
        for i, name in enumerate(names or []):
            if not SEGMENT_NAME.fullmatch(name):
                raise ValueError(f"not a segment: {name!r}")
            schema = f"s{i}"
            file = self.root / SEGMENTS_FOLDER / name / "catalog.sqlite"
            if not file.exists():
                raise SegmentMissingError(
                    f"the index in {self.root} is incomplete: its segment {file.parent} is "
                    "missing; if it was deleted, run `newsbot index --rebuild`"
                )
            uri = file.resolve().as_uri()
            try:
                self._db.execute(f"ATTACH DATABASE '{uri}?mode=ro' AS {schema}")
                self._db.execute(f"SELECT count(*) FROM {schema}.sqlite_master").fetchone()
            except sqlite3.OperationalError:
                # A segment is sealed (no journal beside it): read as immutable where its
                # folder may not be written.
                self._db.execute(f"DETACH DATABASE {schema}")
                self._db.execute(f"ATTACH DATABASE '{uri}?immutable=1' AS {schema}")
            self._parts.append(_Part(schema, name, self._has_table(schema, "stories")))
        if not self._segmented or self.get_meta("sealed") is None:
            own = self.path.parent.name
            self._parts.append(_Part("main", own, self._has_table("main", "stories")))

    @property
    def root(self) -> Path:
        """The index folder this catalog's generation is in."""
        return self.path.parent.parent

    def set_segments(self, names: Sequence[str]) -> None:
        """Make this catalog a segmented generation's, sharing the older segments `names`."""
        self.set_meta("segments", list(names))
        self._attach()

    def segment_names(self) -> list[str]:
        """The older segments this generation shares (oldest first); none before segments."""
        return [part.name for part in self._others]

    @property
    def _others(self) -> list[_Part]:
        """The segments attached (all but this catalog's own tables)."""
        return [part for part in self._parts if part.schema != "main"]

    @property
    def _own(self) -> _Part:
        """This catalog's own tables: a generation being built writes its new segment there."""
        return _Part("main", self.path.parent.name, self._has_table("main", "stories"))

    def own_is_empty(self) -> bool:
        """Whether the generation being built has written no article of its own."""
        return self._db.execute("SELECT 1 FROM main.articles LIMIT 1").fetchone() is None

    def start_from(self, base: Catalog) -> None:
        """Make this (new, empty) catalog the next generation after the segmented `base`:
        it shares all of base's segments, and their dead."""
        self.set_segments(base.segment_names())
        rows = base._db.execute("SELECT segment, article_id, n_chunks FROM dead").fetchall()
        stories = base._db.execute("SELECT article_id, story FROM story_map").fetchall()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO dead VALUES (?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO story_map VALUES (?, ?)", stories)
            self._db.execute("COMMIT")
        except BaseException:
            _rollback(self._db)
            raise

    def seal_into(self, segment: str | None) -> None:
        """Finish a generation being built: move what its own tables hold into the new
        segment `segment` (None when they hold nothing), add it to the segments shared, and
        leave this catalog small, one self-contained file nobody writes again. The segment's
        BM25 and vectors are moved beside it by the caller."""
        if self.get_meta("sealed") is None:
            if segment is not None:
                folder = self.root / SEGMENTS_FOLDER / segment
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / "catalog.sqlite"
                tmp = folder / "catalog.sqlite.tmp"
                tmp.unlink(missing_ok=True)
                self._db.execute(f"ATTACH DATABASE '{tmp.resolve().as_uri()}' AS seal")
                try:
                    self._db.execute("PRAGMA seal.journal_mode=DELETE")
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(
                                statement.replace("IF NOT EXISTS ", "IF NOT EXISTS seal.", 1)
                            )
                    self._db.execute("BEGIN IMMEDIATE")
                    for table in ("articles", "chunks", "stories"):
                        self._db.execute(f"INSERT INTO seal.{table} SELECT * FROM main.{table}")
                    self._db.execute(
                        "INSERT INTO seal.meta SELECT * FROM main.meta WHERE key = 'collection'"
                    )
                    self._db.execute("COMMIT")
                finally:
                    _rollback(self._db)
                    self._db.execute("DETACH DATABASE seal")
                sync_folder(tmp)  # a file as well: its data on disk before it is renamed
                os.replace(tmp, target)
            names = [*self.segment_names(), *([segment] if segment else [])]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self.set_meta("segments", names)
                self.set_meta("sealed", True)
                for table in ("stories", "chunks", "articles"):
                    self._db.execute(f"DELETE FROM main.{table}")
                self._db.execute("COMMIT")
            except BaseException:
                _rollback(self._db)
                raise
        self._attach()

    def segments(self) -> list[SegmentInfo]:
        """Every segment of this generation, oldest first, its own last."""
        out = []
        for part in self._parts:
            meta = self._db.execute(
                f"SELECT value FROM {part.schema}.meta WHERE key = 'collection'"
            ).fetchone()
            rows = (
                self._db.execute(
                    f"SELECT c.id FROM {part.schema}.chunks c JOIN main.dead d "
                    "ON d.article_id = c.article_id AND d.segment = ?",
                    (part.name,),
                )
                if self._segmented
                else []
            )
            dead = frozenset(r[0] for r in rows)
            chunks = self._db.execute(f"SELECT COUNT(*) FROM {part.schema}.chunks").fetchone()[0]
            out.append(
                SegmentInfo(
                    name=part.name,
                    folder=self.path.parent
                    if part.schema == "main"
                    else self.root / SEGMENTS_FOLDER / part.name,
                    collection=None if meta is None else json.loads(meta[0]),
                    dead_chunks=dead,
                    chunks=int(chunks),
                )
            )
        return out

    def absorb(self, names: Iterable[str]) -> None:
        """Copy what this generation holds of the older segments `names` into its own
        segment, and stop sharing them (a merge). Vectors and signatures come along: no
        model call."""
        chosen = set(names)
        parts = [p for p in self._others if p.name in chosen]
        if not parts:
            return
        db = self._db
        article_cols = ",".join(ARTICLE_COLUMNS)
        chunk_cols = ",".join(f'"{c}"' for c in CHUNK_COLUMNS)
        db.execute("BEGIN IMMEDIATE")
        try:
            for part in parts:
                s = part.schema
                db.execute(
                    f"INSERT OR REPLACE INTO main.articles({article_cols}) "
                    f"SELECT {article_cols} FROM {s}.articles WHERE {part.live('id')}"
                )
                db.execute(
                    f"INSERT OR REPLACE INTO main.chunks({chunk_cols}) "
                    f"SELECT {chunk_cols} FROM {s}.chunks WHERE {part.live('article_id')}"
                )
                if part.stories:
                    db.execute(
                        "INSERT OR REPLACE INTO main.stories(article_id, signature, story) "
                        f"SELECT article_id, signature, NULL FROM {s}.stories "
                        f"WHERE {part.live('article_id')}"
                    )
                db.execute("DELETE FROM main.dead WHERE segment = ?", (part.name,))
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self.set_segments([n for n in self.segment_names() if n not in chosen])

    def drop_dead_segments(self) -> None:
        """Stop sharing the older segments of which this generation holds nothing."""
        keep = []
        for part in self._others:
            row = self._db.execute(
                f"SELECT 1 FROM {part.schema}.articles WHERE {part.live('id')} LIMIT 1"
            ).fetchone()
            if row is not None:
                keep.append(part.name)
            else:
                self._db.execute("DELETE FROM main.dead WHERE segment = ?", (part.name,))
        if keep != self.segment_names():
            self.set_segments(keep)

    def _has_table(self, schema: str, name: str) -> bool:
        row = self._db.execute(
            f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self._db.close()

    def seal(self) -> None:
        """Make the catalog one self-contained file, for a generation nobody writes again."""
        for part in self._others:
            self._db.execute(f"DETACH DATABASE {part.schema}")
        self._parts = []
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

    # -- build metadata ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM main.meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO main.meta(key, value) VALUES(?, ?) "
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

    # -- articles and chunks ----------------------------------------------------------------------
    def hashes(self) -> dict[str, tuple[str, str]]:
        """Article id → (content hash, source path)."""
        out = {}
        for part in self._parts:
            rows = self._db.execute(
                f"SELECT id, content_hash, path FROM {part.schema}.articles WHERE {part.live('id')}"
            )
            out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    def chunk_ids(self, article_ids: Iterable[str] | None = None) -> list[str]:
        """Chunk ids of the given articles (all chunks when None), of every segment."""
        out: list[str] = []
        for part in self._parts:
            out.extend(self._chunk_ids(part, article_ids))
        return sorted(out) if article_ids is None else out

    def own_chunk_ids(self) -> list[str]:
        """Chunk ids of this catalog's own segment, sorted."""
        return self._chunk_ids(self._own, None)

    def _chunk_ids(self, part: _Part, article_ids: Iterable[str] | None) -> list[str]:
        table = f"{part.schema}.chunks"
        live = part.live("article_id")
        if article_ids is None:
            query = f"SELECT id FROM {table} WHERE {live} ORDER BY id"
            return [r[0] for r in self._db.execute(query)]
        out: list[str] = []
        for batch in _batches(list(article_ids), 500):
            marks = ",".join("?" * len(batch))
            out.extend(
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM {table} WHERE article_id IN ({marks}) AND {live}", batch
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

        Each article comes with its chunks and their vectors (one row per chunk). They are
        written to this catalog's own segment; an older segment's version of any of them is
        marked dead.
        """
        db = self._db
        gone = [*removed, *(article.id for article, _, _ in articles)]
        db.execute("BEGIN IMMEDIATE")
        try:
            for part in self._others:
                for batch in _batches(gone, 500):
                    marks = ",".join("?" * len(batch))
                    db.execute(
                        "INSERT OR REPLACE INTO main.dead(segment, article_id, n_chunks) "
                        f"SELECT ?, id, n_chunks FROM {part.schema}.articles "
                        f"WHERE id IN ({marks}) AND {part.live('id')}",
                        [part.name, *batch],
                    )
            for batch in _batches(list(removed), 500):
                marks = ",".join("?" * len(batch))
                db.execute(f"DELETE FROM main.chunks WHERE article_id IN ({marks})", batch)
                db.execute(f"DELETE FROM main.articles WHERE id IN ({marks})", batch)
            for article, chunks, vectors in articles:
                db.execute("DELETE FROM main.chunks WHERE article_id = ?", (article.id,))
                db.execute(
                    "INSERT OR REPLACE INTO main.articles VALUES (?,?,?,?,?,?,?,?,?,?)",
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
                    'INSERT INTO main.chunks(id, article_id, ord, start, "end", text, vector) '
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
        for part in self._parts:
            s = part.schema
            for batch in _batches(list(chunk_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    'SELECT c.id AS cid, c.article_id, c.ord, c.start, c."end", c.text, '
                    f"{self._article_columns(part)} FROM {s}.chunks c "
                    f"JOIN {s}.articles a ON a.id = c.article_id {self._story_join(part)} "
                    f"WHERE c.id IN ({marks}) AND {part.live('c.article_id')}",
                    batch,
                )
                for r in rows:
                    chunk = Chunk(
                        r["cid"], r["article_id"], r["ord"], r["start"], r["end"], r["text"]
                    )
                    out[chunk.id] = Passage(chunk, _article_record(r))
        return out

    def _find(self, article_id: str) -> tuple[_Part, sqlite3.Row] | None:
        """The segment holding `article_id`, and its row."""
        for part in self._parts:
            row = self._db.execute(
                f"SELECT * FROM {part.schema}.articles WHERE id = ? AND {part.live('id')}",
                (article_id,),
            ).fetchone()
            if row is not None:
                return part, row
        return None

    def pieced_articles(self, article_ids: Iterable[str]) -> list[Article]:
        """The given articles as indexed, each text pieced together from its chunks.

        Chunks cover all of an article's text but the whitespace between some of them
        (the splitter strips it): a one-character gap becomes a space, a longer one line
        breaks, so every chunk sits at its offsets again. For an article whose file can no
        longer be read, this is what is left to chunk anew.
        """
        out: list[Article] = []
        for article_id in article_ids:
            found = self._find(article_id)
            if found is None:
                continue
            part, record = found
            text: list[str] = []
            end = 0
            for chunk in self._db.execute(
                f'SELECT start, "end", text FROM {part.schema}.chunks WHERE article_id = ? '
                "ORDER BY ord",
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
        """(chunk id, article title, chunk text) for every chunk of this catalog's own
        segment, in chunk-id order."""
        rows = self._db.execute(
            "SELECT c.id, a.title, c.text FROM main.chunks c "
            "JOIN main.articles a ON a.id = c.article_id ORDER BY c.id"
        )
        for r in rows:
            yield r[0], r[1], r[2]

    def set_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors for existing chunks (when an index from before is carried over)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "UPDATE main.chunks SET vector = ? WHERE id = ?",
                [(_blob(v), cid) for cid, v in vectors.items()],
            )
            self._db.execute("COMMIT")
        except BaseException:
            _rollback(self._db)
            raise

    def dimension(self) -> int | None:
        """The length of the vectors kept (None with none)."""
        for part in self._parts:
            row = self._db.execute(
                f"SELECT length(vector) FROM {part.schema}.chunks WHERE vector IS NOT NULL LIMIT 1"
            ).fetchone()
            if row is not None:
                return int(row[0]) // 4
        return None

    def articles_missing_vectors(self) -> set[str]:
        """Articles of this catalog's own tables with a chunk that has no vector (an index
        from before vectors were kept in the catalog, copied in). A sealed segment has every
        vector (its chunks were embedded, or copied with theirs), so it is not read: that
        would mean reading every chunk of the index."""
        rows = self._db.execute("SELECT DISTINCT article_id FROM main.chunks WHERE vector IS NULL")
        return {r[0] for r in rows}

    def iter_vectors(
        self, batch: int, article_ids: Iterable[str] | None = None
    ) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        """(chunk ids, vectors, store metadata) of every chunk with a vector in this
        catalog's own segment (of the given articles only, if any are given), `batch` at a
        time."""
        query = (
            "SELECT c.id, c.vector, c.article_id, c.ord, a.source, a.published "
            "FROM main.chunks c JOIN main.articles a ON a.id = c.article_id "
            "WHERE c.vector IS NOT NULL"
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
        out: list[ArticleRecord] = []
        for part in self._parts:
            rows = self._db.execute(
                f"SELECT {self._article_columns(part)} FROM {part.schema}.articles a "
                f"{self._story_join(part)} WHERE {part.live('a.id')}"
            )
            out.extend(_article_record(r) for r in rows)
        return sorted(out, key=lambda a: a.id)

    def _records(self, article_ids: Sequence[str]) -> list[ArticleRecord]:
        out: list[ArticleRecord] = []
        for part in self._parts:
            for batch in _batches(list(article_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT {self._article_columns(part)} FROM {part.schema}.articles a "
                    f"{self._story_join(part)} WHERE a.id IN ({marks}) AND {part.live('a.id')}",
                    batch,
                )
                out.extend(_article_record(r) for r in rows)
        return sorted(out, key=lambda a: a.id)

    # -- stories (syndicated copies, `index.build.stories`) ---------------------------------------
    def _article_columns(self, part: _Part) -> str:
        if self.segmented:
            return "a.*, COALESCE(m.story, a.id) AS story"
        return "a.*, s.story" if part.stories else "a.*, NULL AS story"

    def _story_join(self, part: _Part) -> str:
        if self.segmented:
            return "LEFT JOIN main.story_map m ON m.article_id = a.id"
        if part.stories:
            return f"LEFT JOIN {part.schema}.stories s ON s.article_id = a.id"
        return ""

    def copies(self, story_ids: Iterable[str]) -> dict[str, list[ArticleRecord]]:
        """Story id → its articles, for the given stories that have more than one."""
        wanted = sorted(set(story_ids))
        if self.segmented:
            members: set[str] = set()
            for batch in _batches(wanted, 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT article_id, story FROM main.story_map WHERE story IN ({marks})",
                    batch,
                )
                for r in rows:
                    members.update((r[0], r[1]))  # a story's id is its first article's
            out: dict[str, list[ArticleRecord]] = {}
            for record in self._records(sorted(members)):
                out.setdefault(record.story_id, []).append(record)
            return {story: found for story, found in out.items() if len(found) > 1}
        if not self._own.stories:
            return {}
        out = {}
        for batch in _batches(wanted, 500):
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
        out: dict[str, bytes] = {}
        for part in self._parts:
            if part.stories:
                rows = self._db.execute(
                    f"SELECT article_id, signature FROM {part.schema}.stories "
                    f"WHERE {part.live('article_id')}"
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    def articles_missing_signatures(self) -> set[str]:
        """Articles without a stored story signature."""
        out: set[str] = set()
        for part in self._parts:
            s = part.schema
            if not part.stories:
                query = f"SELECT a.id FROM {s}.articles a WHERE {part.live('a.id')}"
            else:
                query = (
                    f"SELECT a.id FROM {s}.articles a LEFT JOIN {s}.stories t "
                    f"ON t.article_id = a.id WHERE t.article_id IS NULL AND {part.live('a.id')}"
                )
            out.update(r[0] for r in self._db.execute(query))
        return out

    def story_map(self) -> dict[str, str]:
        """Article id → story id, for the articles that are a copy of another (segmented)."""
        rows = self._db.execute("SELECT article_id, story FROM main.story_map")
        return {r[0]: r[1] for r in rows}

    def set_stories(self, signatures: dict[str, bytes], stories: dict[str, str]) -> None:
        """Store new signatures (article id → signature, for articles of this catalog's own
        segment), then every article's story (article id → story id), in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO main.stories(article_id, signature, story) "
                "VALUES (?, ?, NULL)",
                list(signatures.items()),
            )
            if self.segmented:
                db.execute("DELETE FROM main.story_map")
                db.executemany(
                    "INSERT INTO main.story_map(article_id, story) VALUES (?, ?)",
                    [(aid, story) for aid, story in stories.items() if story != aid],
                )
            else:
                db.executemany(
                    "UPDATE main.stories SET story = ? WHERE article_id = ?",
                    [(story, aid) for aid, story in stories.items()],
                )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def drop_signatures(self) -> None:
        """Forget every signature of this catalog's own segment (they were made another way)."""
        self._db.execute("DELETE FROM main.stories")

    def copy_count(self) -> tuple[int, int]:
        """(articles that are a copy of another, stories with copies)."""
        if self.segmented:
            row = self._db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT story) FROM main.story_map"
            ).fetchone()
            return int(row[0]), int(row[1])
        if not self._own.stories:
            return 0, 0
        row = self._db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT story) FROM stories WHERE story IN "
            "(SELECT story FROM stories GROUP BY story HAVING COUNT(*) > 1)"
        ).fetchone()
        return int(row[0]) - int(row[1]), int(row[1])

    def counts(self) -> tuple[int, int]:
        """(articles, chunks)."""
        articles = chunks = 0
        for part in self._parts:
            articles += self._db.execute(f"SELECT COUNT(*) FROM {part.schema}.articles").fetchone()[
                0
            ]
            chunks += self._db.execute(f"SELECT COUNT(*) FROM {part.schema}.chunks").fetchone()[0]
        if self._segmented:
            row = self._db.execute("SELECT COUNT(*), TOTAL(n_chunks) FROM main.dead").fetchone()
            articles -= int(row[0])
            chunks -= int(row[1])
        return int(articles), int(chunks)


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
