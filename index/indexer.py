"""Reindexing: bring the vectors, BM25 and catalog in line with the corpus folder."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog import Catalog
from index.chunks import TITLE_TOKENS, Chunk, Chunker
from index.corpus.article import Article
from index.corpus.scan import CorpusScan, scan_corpus
from index.embeddings import Embedder, check_fits, vector_precision
from index.errors import (
    ArticleError,
    CorpusError,
    CorpusProblemsError,
    IndexBusyError,
    IndexMismatchError,
    NewsbotError,
    StoreUnavailableError,
    VectorsMissingError,
)
from index.layout import Generation, IndexLayout, sync_folder
from index.lexical import LexicalIndex
from index.settings import Settings
from index.store import WRITE_BATCH, VectorStore, collection_name

log = logging.getLogger("newsbot.index")

INDEX_FORMAT = 1
CHROMA_SQLITE = "chroma.sqlite3"  # the embedded store's own database file
# Chunks embedded and committed together: a killed run loses at most one group's work.
GROUP_CHUNKS = 1024

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while indexing; stage is "embed", then "store"."""


@dataclass
class IndexReport:
    """What a reindex did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    repaired: list[str] = field(default_factory=list)
    # Articles whose file could not be read this time: their last indexed version stays.
    kept: list[str] = field(default_factory=list)
    problems: list[ArticleError] = field(default_factory=list)
    # The store had lost the vectors of the index in service: they were put back from the
    # catalog (no model call).
    vectors_restored: bool = False
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether the corpus differs from the index (articles added, updated or removed)."""
        return bool(self.added or self.updated or self.removed)

    @property
    def skipped_files(self) -> int:
        """Files and folders skipped as a whole."""
        return sum(1 for p in self.problems if p.whole_file)

    @property
    def skipped_records(self) -> int:
        """JSON records and JSONL lines skipped in files that were otherwise read."""
        return len(self.problems) - self.skipped_files


# What a manifest written before a key existed meant by its absence.
MANIFEST_DEFAULTS: dict[str, Any] = {"precision": "float32"}


def manifest_for(settings: Settings, model_name: str) -> dict[str, Any]:
    """The settings an index depends on: opening it with others is refused.

    The backend counts through the vectors it makes: torch and onnx agree, onnx-int8 differs.
    """
    return {
        "format": INDEX_FORMAT,
        "model": model_name,
        "precision": vector_precision(settings.embed_backend),
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "title_tokens": TITLE_TOKENS,
    }


def check_manifest(recorded: dict[str, Any] | None, wanted: dict[str, Any], where: Path) -> None:
    """Raise `IndexMismatchError` naming the keys of `wanted` that `recorded` has otherwise.

    Only `wanted`'s keys count: what `recorded` adds (the dimension) follows from them.
    """
    if recorded is None:
        return
    diffs = [
        f"{key} {recorded.get(key, MANIFEST_DEFAULTS.get(key))!r} (settings say {value!r})"
        for key, value in wanted.items()
        if recorded.get(key, MANIFEST_DEFAULTS.get(key)) != value
    ]
    if diffs:
        raise IndexMismatchError(
            f"the index in {where} was built with {', '.join(diffs)}: "
            "run `newsbot index --rebuild` to rebuild it with the current settings"
        )


@contextmanager
def writer_lock(layout: IndexLayout) -> Iterator[None]:
    """Hold the index's single-writer lock, or raise `IndexBusyError` at once.

    The lock is an flock: it goes with the process holding it, however that process ends.
    Readers take no lock: they only open complete generations, which nobody writes.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise IndexBusyError(
                f"another `newsbot index` (pid {holder}) is writing {layout.root}: "
                "wait for it to finish"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def reindex(
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    strict: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    """Index `settings.corpus_dir` into `settings.index_dir`.

    The index in service is never written: the next generation is built beside it (from a
    copy of its catalog, so unchanged articles cost no model call), checked, and switched
    to in one atomic step. Readers keep answering from the old generation meanwhile. A run
    that is killed leaves the generation in service as it was; the next run resumes the
    build where it stopped. With nothing changed, no generation is built.

    Args:
        settings: where the corpus and the index are, and how to chunk.
        embedder: the model; it must be the one the index was built with.
        rebuild: build the index anew from nothing (after a model or chunking change);
            an article whose file cannot be read now is kept, chunked anew from the
            text its indexed chunks hold.
        strict: refuse to change the index if any file or record cannot be read.
        progress: told how embedding and storing advance.

    Returns:
        What was added, updated, removed, left unchanged, repaired, kept and skipped.

    Raises:
        CorpusError, CorpusProblemsError (strict), IndexMismatchError, IndexBusyError,
        StoreUnavailableError.
    """
    started = time.perf_counter()
    layout = IndexLayout(settings.index_dir)
    with writer_lock(layout):
        live = layout.current()
        base = _read_live(live)
        scan = scan_corpus(
            settings.corpus_dir,
            indexed_paths={aid: path for aid, (_, path) in base.hashes.items()},
        )
        if strict and scan.problems:
            raise CorpusProblemsError(scan.problems)
        wanted = manifest_for(settings, embedder.name)
        if not rebuild:
            check_manifest(base.manifest, wanted, settings.index_dir)
        report = _plan(settings, scan, base.hashes, rebuild=rebuild)
        if live is not None and live.number and not rebuild and not report.changed:
            report.vectors_restored = not _store_whole(settings, live, base)
        if (
            live is not None
            and live.number
            and not rebuild
            and not report.changed
            and not report.vectors_restored
        ):
            shutil.rmtree(layout.building, ignore_errors=True)  # a killed build, now moot
            layout.remove_stale(_kept_generations(layout, live.number))
            report.chunks_total = base.chunks
        else:
            _build(settings, embedder, layout, live, base, scan, report, wanted, rebuild, progress)
        report.seconds = time.perf_counter() - started
        return report


@dataclass
class _Live:
    """What the generation in service says about itself (empty without one)."""

    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    index_id: str | None = None
    chunks: int = 0


def _read_live(live: Generation | None) -> _Live:
    if live is None:
        return _Live()
    catalog = Catalog(live.catalog, writable=False)
    try:
        return _Live(
            hashes=catalog.hashes(),
            manifest=catalog.get_meta("manifest"),
            index_id=catalog.get_meta("index_id"),
            chunks=catalog.counts()[1],
        )
    finally:
        catalog.close()


def _store_whole(settings: Settings, live: Generation, base: _Live) -> bool:
    """Whether the store holds every vector of the generation in service.

    A Chroma server that lost its data, or a deleted `chroma/` folder, is mended by building
    a new generation: its vectors come from the catalog.
    """
    catalog = Catalog(live.catalog, writable=False)
    try:
        name = catalog.get_meta("collection")
    finally:
        catalog.close()
    if name is None or base.index_id is None:
        return False
    try:
        store = VectorStore(settings, owner=base.index_id, path=live.chroma, name=name)
    except VectorsMissingError:
        return False
    try:
        return store.count() == base.chunks
    finally:
        store.close()


def _plan(
    settings: Settings, scan: CorpusScan, old: dict[str, tuple[str, str]], *, rebuild: bool
) -> IndexReport:
    """What the corpus changed since the index `old` (article id → hash, path).

    A rebuild starts from nothing, so every article read is added; it still keeps the
    articles of `old` whose file, line or folder can no longer be read.
    """
    report = IndexReport()
    current = {a.id for a in scan.articles}
    gone = sorted(aid for aid in old if aid not in current)
    report.kept = [aid for aid in gone if scan.failed(old[aid][1])]
    report.problems = _note_kept(scan.problems, [old[aid][1] for aid in report.kept])
    if rebuild:
        report.added = [a.id for a in scan.articles]
        return report
    report.removed = [aid for aid in gone if not scan.failed(old[aid][1])]
    if not scan.articles and report.removed:
        raise CorpusError(
            f"no articles found in {settings.corpus_dir}; refusing to empty an index of "
            f"{len(old)} articles (use --rebuild to really start from nothing)"
        )
    for article in scan.articles:
        if article.id not in old:
            report.added.append(article.id)
        elif old[article.id][0] != article.content_hash:
            report.updated.append(article.id)
        else:
            report.unchanged += 1
    return report


def _kept_generations(layout: IndexLayout, current: int) -> set[int]:
    """The generation in service and the one before it (a reader may be mid-question in it)."""
    older = [n for n in layout.numbers() if n < current]
    if current and (layout.root / "catalog.sqlite").exists():
        older.append(0)  # an index from before generations
    return {current, max(older)} if older else {current}


def _build(
    settings: Settings,
    embedder: Embedder,
    layout: IndexLayout,
    live: Generation | None,
    base: _Live,
    scan: CorpusScan,
    report: IndexReport,
    wanted: dict[str, Any],
    rebuild: bool,
    progress: Progress | None,
) -> None:
    """Build the next generation in `building/` (resuming a killed build) and switch to it."""
    if live is not None:  # a generation built but never switched to is of no use
        layout.remove_stale(_kept_generations(layout, live.number))
    copy_from = None if rebuild else live
    catalog, number = _open_building(settings, layout, copy_from, base, wanted)
    building = Generation(layout.building, number)
    try:
        index_id = catalog.index_id()
        # A rebuild chunks the kept articles anew from what the generation in service holds.
        articles = [*scan.articles, *(_pieced(live, report.kept) if rebuild else [])]
        current = {a.id: a for a in articles}
        done = catalog.hashes()
        missing = catalog.articles_missing_vectors()
        # An article kept from an unreadable file stays as it is, unless it has no vectors
        # (carried over from an index that lost them): then it cannot be served.
        drop = [
            aid
            for aid in done
            if (aid not in current and aid not in report.kept)
            or (aid in missing and aid not in current)
        ]
        if drop:
            catalog.replace_articles([], drop, _now())
        changed = [
            a
            for a in articles
            if a.id not in done or done[a.id][0] != a.content_hash or a.id in missing
        ]
        planned = set(report.added) | set(report.updated) | set(report.kept)
        report.repaired = sorted(a.id for a in changed if a.id not in planned)
        if changed:
            check_fits(embedder, Chunker.window_needed(settings.chunk_tokens))
            chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
            report.chunks_embedded = _embed_and_write(embedder, chunker, catalog, changed, progress)
        catalog.set_meta("manifest", {**wanted, "dimension": catalog.dimension()})
        catalog.set_meta("last_indexed", _now())
        name = collection_name(settings, index_id, number)
        catalog.set_meta("collection", name)
        reuse = None
        embedded = not settings.chroma_host and not report.vectors_restored
        if copy_from is not None and copy_from.number and embedded:
            renewed = {
                aid
                for aid, (content_hash, _) in catalog.hashes().items()
                if base.hashes.get(aid, ("", ""))[0] != content_hash
            }
            reuse = (copy_from, renewed | set(report.repaired))
        stored = _write_store(settings, catalog, building, index_id, name, reuse, progress)
        lexical = _write_lexical(catalog, building.bm25)
        _check_consistent(catalog, stored, lexical)
        report.chunks_total = len(stored)
        catalog.set_meta("build", None)
        catalog.seal()
    finally:
        catalog.close()
    target = layout.generation_dir(number)
    shutil.rmtree(target, ignore_errors=True)  # left by a run killed before its switch
    os.replace(layout.building, target)
    sync_folder(layout.root)
    layout.switch_to(Generation(target, number))
    keep = _kept_generations(layout, number)
    layout.remove_stale(keep)
    with contextlib.suppress(StoreUnavailableError):  # cleaned up by a later run instead
        VectorStore.remove_other_generations(
            settings, index_id, {collection_name(settings, index_id, n) for n in keep}
        )


def _pieced(live: Generation | None, article_ids: list[str]) -> list[Article]:
    """The articles `article_ids` of the generation in service, their texts pieced together."""
    if live is None or not article_ids:
        return []
    catalog = Catalog(live.catalog, writable=False)
    try:
        return catalog.pieced_articles(article_ids)
    finally:
        catalog.close()


def _open_building(
    settings: Settings,
    layout: IndexLayout,
    copy_from: Generation | None,
    base: _Live,
    wanted: dict[str, Any],
) -> tuple[Catalog, int]:
    """The catalog of the generation being built, and its number.

    A build a killed run left for the same base generation and settings is resumed: what
    it embedded is kept. Anything else there is discarded.
    """
    path = layout.building / "catalog.sqlite"
    plan = {"base": copy_from.name if copy_from else None, "manifest": wanted}
    if path.exists():
        catalog = Catalog(path)
        meta = catalog.get_meta("build") or {}
        if {k: meta.get(k) for k in plan} == plan and isinstance(meta.get("number"), int):
            return catalog, int(meta["number"])
        catalog.close()
    shutil.rmtree(layout.building, ignore_errors=True)
    layout.building.mkdir(parents=True)
    number = max([*layout.numbers(), layout.generation()]) + 1
    if copy_from is None:
        catalog = Catalog(path)
        if base.index_id:  # a --rebuild keeps the index's identity (and its collections' names)
            catalog.set_meta("index_id", base.index_id)
    else:
        source = Catalog(copy_from.catalog, writable=False)
        try:
            catalog = source.copy_to(path)
        finally:
            source.close()
        if copy_from.number == 0:
            _carry_over_vectors(settings, catalog, copy_from)
    catalog.set_meta("build", {**plan, "number": number})
    return catalog, number


def _carry_over_vectors(settings: Settings, catalog: Catalog, legacy: Generation) -> None:
    """Copy the vectors of an index from before generations into its catalog."""
    store = VectorStore(
        settings,
        owner=catalog.index_id(),
        path=legacy.chroma,
        name=collection_name(settings, catalog.index_id(), 0),
    )
    try:
        catalog.set_vectors(store.vectors(catalog.chunk_ids()))
    finally:
        store.close()


def _write_store(
    settings: Settings,
    catalog: Catalog,
    building: Generation,
    index_id: str,
    name: str,
    reuse: tuple[Generation, set[str]] | None,
    progress: Progress | None,
) -> set[str]:
    """Give the new generation its vector collection; the ids it then holds.

    With `reuse` (the embedded store, and a generation this one was copied from together with
    the articles that differ from it), the old generation's Chroma folder is copied and only
    those articles' vectors are written: a small change to a large index costs seconds, not
    a rebuild of every vector. Otherwise, or if that fails, every vector of the catalog goes
    into a fresh collection.
    """
    if reuse is not None:
        source, renewed = reuse
        try:
            _copy_chroma(source.chroma, building.chroma)
            store = VectorStore(settings, owner=index_id, path=building.chroma, name=name)
        except Exception:
            log.warning("could not copy the vectors of %s; writing them all anew", source.name)
        else:
            try:
                wanted = set(catalog.chunk_ids())
                store.delete(sorted(store.ids() - wanted))
                _fill(store, catalog, renewed, progress)
                return store.ids()
            finally:
                store.close()
    store = VectorStore(settings, owner=index_id, path=building.chroma, name=name, fresh=True)
    try:
        _fill(store, catalog, None, progress)
        return store.ids()
    finally:
        store.close()


def _fill(
    store: VectorStore, catalog: Catalog, articles: set[str] | None, progress: Progress | None
) -> None:
    """Write the vectors of `articles` (all when None) from the catalog into `store`."""
    total = catalog.counts()[1] if articles is None else len(catalog.chunk_ids(articles))
    done = 0
    if progress:
        progress("store", 0, total)
    for ids, vectors, metas in catalog.iter_vectors(WRITE_BATCH, articles):
        store.upsert(ids, vectors, metas)
        done += len(ids)
        if progress:
            progress("store", done, total)


def _copy_chroma(source: Path, target: Path) -> None:
    """Copy an embedded Chroma folder of a complete generation.

    Nobody writes a complete generation's vector files; its SQLite file may be touched by
    readers opening it, so that is copied with SQLite's online backup, which is consistent.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == CHROMA_SQLITE:
            source_db = sqlite3.connect(f"{item.resolve().as_uri()}?mode=ro", uri=True)
            target_db = sqlite3.connect(target / item.name)
            try:
                source_db.backup(target_db)
            finally:
                target_db.close()
                source_db.close()
        elif item.name.startswith(CHROMA_SQLITE):
            continue  # its journal: the backup has what it holds
        elif item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy2(item, target / item.name)


def _write_lexical(catalog: Catalog, path: Path) -> list[str]:
    ids: list[str] = []
    texts: list[str] = []
    for chunk_id, title, text in catalog.iter_chunk_texts():
        ids.append(chunk_id)
        texts.append(f"{title}\n{text}")
    LexicalIndex.build(ids, texts).save(path)
    return ids


def _check_consistent(catalog: Catalog, stored: set[str], lexical: list[str]) -> None:
    """Refuse to switch to a generation whose vectors, BM25 and catalog disagree."""
    chunks = catalog.chunk_ids()
    if set(chunks) != stored or sorted(lexical) != chunks or len(set(chunks)) != len(chunks):
        raise NewsbotError(
            f"the new index came out inconsistent ({len(chunks)} chunks, {len(stored)} vectors, "
            f"{len(lexical)} in BM25); the index in service is unchanged: run `newsbot index` "
            "again"
        )


def _note_kept(problems: list[ArticleError], kept_paths: list[str]) -> list[ArticleError]:
    """Say, on the first problem of each file or folder, which indexed articles it keeps."""
    noted: set[str] = set()
    out: list[ArticleError] = []
    for problem in problems:
        where = problem.path
        count = sum(1 for path in kept_paths if path == where or path.startswith(where + "/"))
        if count and where not in noted:
            noted.add(where)
            what = "the article" if count == 1 else f"the {count} articles"
            problem = ArticleError(
                problem.where,
                f"{problem.reason}; kept {what} indexed from {where} before",
                path=where,
            )
        out.append(problem)
    return out


def _embed_and_write(
    embedder: Embedder,
    chunker: Chunker,
    catalog: Catalog,
    changed: list[Article],
    progress: Progress | None,
) -> int:
    """Chunk and embed `changed` into the catalog, a group of articles per transaction."""
    planned = [(article, chunker.split(article)) for article in changed]
    total = sum(len(chunks) for _, chunks in planned)
    done = 0
    if progress:
        progress("embed", 0, total)
    for group in _groups(planned, GROUP_CHUNKS):
        texts = [chunker.embed_text(a.title, c) for a, chunks in group for c in chunks]
        vectors = _embed_sorted(embedder, texts)
        rows = []
        start = 0
        for article, chunks in group:
            rows.append((article, chunks, vectors[start : start + len(chunks)]))
            start += len(chunks)
        catalog.replace_articles(rows, [], _now())
        done += len(texts)
        if progress:
            progress("embed", done, total)
    return total


def _embed_sorted(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed with texts of similar length together (less padding), in the original order."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = embedder.embed([texts[i] for i in order])
    out = np.empty_like(vectors)
    out[order] = vectors
    return out


def _groups(
    planned: list[tuple[Article, list[Chunk]]], size: int
) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    group: list[tuple[Article, list[Chunk]]] = []
    count = 0
    for item in planned:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
