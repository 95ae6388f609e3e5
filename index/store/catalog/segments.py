"""A catalog's segments: the older ones it shares, attached read-only, its own, and sealing
its own into a segment of its own."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import SegmentDamagedError, SegmentMissingError
from index.store.catalog.meta import MetaTables
from index.store.catalog.schema import (
    ARTICLE_COLUMNS,
    CHUNK_COLUMNS,
    SCHEMA,
    Part,
    is_damage,
    rollback,
)
from index.store.integrity import FileRecord, check_files, record_files
from index.store.layout import (
    CATALOG_FILE,
    SEGMENT_NAME,
    SEGMENTS_FOLDER,
    IndexLayout,
    sync_folder,
)

# The generation catalog's record of its segments' files (`index.store.integrity`): segment
# name → file path → [size, CRC-32 of its head, CRC-32 of the whole]. A segment sealed
# before it existed has none, and is not verifiable.
FILES_KEY = "files"


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
    # Its files as they were sealed (`index.store.integrity`); None if it was sealed before
    # they were recorded.
    files: dict[str, FileRecord] | None = None


class SegmentTables(MetaTables):
    """The segments of the generation: which are attached, what each still holds, merging
    them (`absorb`) and sealing the catalog's own tables into a new one (`seal_into`)."""

    _segmented: bool
    # Segments `_attach` left unattached because their catalog is missing or damaged (only
    # when opened with `skip_damaged`): name → what is wrong.
    unattached: dict[str, str]
    _skip_damaged: bool
    _skip: dict[str, str]  # segments not to attach: name → why

    @property
    def segmented(self) -> bool:
        """Whether this catalog is a segmented generation's (else one from before segments)."""
        return self._segmented

    def _attach(self) -> None:
        """Attach the segments `meta.segments` names (read-only), detaching others.

        The segments hold the generation's articles; while a generation is built (until
        `seal_into`), this catalog's own tables hold its new segment's. A segment's catalog
        is checked against the generation's record of it first (its size and head: cheap).

        Raises:
            SegmentMissingError: a segment's catalog is not there;
            SegmentDamagedError: it is not as it was written, or SQLite cannot read it.
            (With `skip_damaged`, neither: the segment is left out, in `unattached`.)
        """
        for part in self._parts:
            if part.schema != "main":
                self._db.execute(f"DETACH DATABASE {part.schema}")
        names = self.get_meta("segments")
        self._segmented = names is not None
        self._parts = []
        self.unattached = {}
        records = self.file_records()
        for i, name in enumerate(names or []):
            if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name):
                raise ValueError(f"not a segment: {name!r}")
            if name in self._skip:
                self.unattached[name] = self._skip[name]
                continue
            schema = f"s{i}"
            try:
                self._attach_one(name, schema, records.get(name))
            except (SegmentMissingError, SegmentDamagedError) as exc:
                if not self._skip_damaged:
                    raise
                self.unattached[name] = getattr(exc, "damage", f"{CATALOG_FILE} is missing")
                continue
            self._parts.append(Part(schema, name, self._has_table(schema, "stories")))
        if not self._segmented or self.get_meta("sealed") is None:
            own = self.path.parent.name
            self._parts.append(Part("main", own, self._has_table("main", "stories")))

    def _attach_one(self, name: str, schema: str, record: dict[str, FileRecord] | None) -> None:
        """Attach the catalog of segment `name` as `schema`, read-only, once it is checked
        against its `record` (None: sealed before files were recorded)."""
        file = IndexLayout(self.root).segment(name).catalog
        if not file.exists():
            raise SegmentMissingError(
                f"the index in {self.root} is incomplete: {SEGMENTS_FOLDER}/{name}/"
                f"{CATALOG_FILE} is missing: run `newsbot index` to repair it (if a "
                "copy of the folder is being made, wait for it to finish)"
            )
        damage = check_files(file.parent, record, part=CATALOG_FILE) if record else None
        if damage is not None:
            raise SegmentDamagedError(self.root, f"{SEGMENTS_FOLDER}/{name}", str(damage))
        uri = file.resolve().as_uri()
        try:
            try:
                self._db.execute(f"ATTACH DATABASE '{uri}?mode=ro' AS {schema}")
                self._db.execute(f"SELECT count(*) FROM {schema}.sqlite_master").fetchone()
            except sqlite3.OperationalError as exc:
                if is_damage(exc):
                    raise
                # A segment is sealed (no journal beside it): read as immutable where its
                # folder may not be written.
                self._db.execute(f"DETACH DATABASE {schema}")
                self._db.execute(f"ATTACH DATABASE '{uri}?immutable=1' AS {schema}")
                self._db.execute(f"SELECT count(*) FROM {schema}.sqlite_master").fetchone()
            for table in ("articles", "chunks", "meta"):
                if not self._has_table(schema, table):
                    raise sqlite3.DatabaseError(f"it has no {table} table")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"DETACH DATABASE {schema}")
            if isinstance(exc, sqlite3.OperationalError) and not is_damage(exc):
                raise
            raise SegmentDamagedError(
                self.root, f"{SEGMENTS_FOLDER}/{name}", f"{CATALOG_FILE} cannot be read ({exc})"
            ) from exc

    def file_records(self) -> dict[str, dict[str, FileRecord]]:
        """The recorded files of this generation's segments, by segment (`FILES_KEY`)."""
        records = self.get_meta(FILES_KEY)
        if not isinstance(records, dict):
            return {}
        return {k: v for k, v in records.items() if isinstance(v, dict)}

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
    def _others(self) -> list[Part]:
        """The segments attached (all but this catalog's own tables)."""
        return [part for part in self._parts if part.schema != "main"]

    @property
    def _own(self) -> Part:
        """This catalog's own tables: a generation being built writes its new segment there."""
        return Part("main", self.path.parent.name, self._has_table("main", "stories"))

    def own_is_empty(self) -> bool:
        """Whether the generation being built has written no article of its own."""
        return self._db.execute("SELECT 1 FROM main.articles LIMIT 1").fetchone() is None

    def start_from(self, base: SegmentTables) -> None:
        """Make this (new, empty) catalog the next generation after the segmented `base`:
        it shares all of base's segments, and their dead."""
        names = base.segment_names()
        self.set_meta(FILES_KEY, {k: v for k, v in base.file_records().items() if k in set(names)})
        self.set_segments(names)
        rows = [
            row
            for row in base._db.execute("SELECT segment, article_id, n_chunks FROM dead")
            if row[0] in set(names)  # not those of a damaged segment left out
        ]
        stories = base._db.execute("SELECT article_id, story FROM story_map").fetchall()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO dead VALUES (?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO story_map VALUES (?, ?)", stories)
            self._db.execute("COMMIT")
        except BaseException:
            rollback(self._db)
            raise

    def seal_into(self, segment: str | None) -> None:
        """Finish a generation being built: move what its own tables hold into the new
        segment `segment` (None when they hold nothing), add it to the segments shared, and
        leave this catalog small, one self-contained file nobody writes again. The segment's
        BM25 and vectors are moved beside it by the caller."""
        if self.get_meta("sealed") is None:
            if segment is not None:
                target = IndexLayout(self.root).segment(segment).catalog
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f"{CATALOG_FILE}.tmp")
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
                    rollback(self._db)
                    self._db.execute("DETACH DATABASE seal")
                sync_folder(tmp)  # a file as well: its data on disk before it is renamed
                os.replace(tmp, target)
            names = [*self.segment_names(), *([segment] if segment else [])]
            records = {k: v for k, v in self.file_records().items() if k in set(names)}
            if segment is not None:  # its files are complete: BM25 and vectors moved in first
                records[segment] = record_files(IndexLayout(self.root).segment(segment).root)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self.set_meta("segments", names)
                self.set_meta(FILES_KEY, records)
                self.set_meta("sealed", True)
                for table in ("stories", "chunks", "articles"):
                    self._db.execute(f"DELETE FROM main.{table}")
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise
        self._attach()

    def segments(self) -> list[SegmentInfo]:
        """Every segment of this generation, oldest first, its own last."""
        records = self.file_records()
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
                    else IndexLayout(self.root).segment(part.name).root,
                    collection=None if meta is None else json.loads(meta[0]),
                    dead_chunks=dead,
                    chunks=int(chunks),
                    files=records.get(part.name) if part.schema != "main" else None,
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
            rollback(db)
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

    def seal(self) -> None:
        """Make the catalog one self-contained file, for a generation nobody writes again."""
        for part in self._others:
            self._db.execute(f"DETACH DATABASE {part.schema}")
        self._parts = []
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("VACUUM")
