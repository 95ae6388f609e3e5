"""Reindexing: bring the vectors, BM25 and catalog in line with the corpus folder."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.articles import Article, CorpusScan, scan_corpus
from index.catalog import Catalog
from index.chunks import TITLE_TOKENS, Chunk, Chunker
from index.embeddings import Embedder, check_fits, vector_precision
from index.errors import (
    ArticleError,
    CorpusError,
    CorpusProblemsError,
    IndexBusyError,
    IndexMismatchError,
)
from index.layout import IndexLayout
from index.lexical import LexicalIndex
from index.settings import Settings
from index.store import VectorStore

INDEX_FORMAT = 1
# Chunks embedded and committed together: a crash loses at most one group's work.
GROUP_CHUNKS = 1024
# A reader holds the writer lock shared only while it opens the index (well under a second).
READER_WAIT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.05

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while indexing; stage is "embed"."""


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
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

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
    """Hold the index's single-writer lock, or raise `IndexBusyError`.

    Another writer turns this one away at once. A reader opening the index holds the lock
    shared for a moment (see `reader_lock`): that is waited for, up to `READER_WAIT_SECONDS`.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "a+") as handle:
        deadline = time.monotonic() + READER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                handle.seek(0)
                holder = handle.read().strip()  # only writers write their pid
                if holder or time.monotonic() > deadline:
                    raise IndexBusyError(
                        f"another `newsbot index` (pid {holder or '?'}) is writing {layout.root}: "
                        "wait for it to finish"
                    ) from exc
                time.sleep(LOCK_POLL_SECONDS)
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


@contextmanager
def reader_lock(layout: IndexLayout) -> Iterator[None]:
    """Keep writers out while the index is opened; raise `IndexBusyError` if one is writing.

    Opening the embedded Chroma store while another process writes it is what breaks it: the
    opener replays the writer's log into its HNSW segment, fails ("Failed to apply logs to the
    hnsw segment writer", "Error finding id"), or crashes, and the store then fails for every
    process until `newsbot index --rebuild`. A store opened before the writer started is safe
    to keep using (it answers from what it loaded, the catalog skips what was removed).
    """
    fd = os.open(layout.lock, os.O_RDONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = handle.read().strip() or "?"
            raise IndexBusyError(
                f"`newsbot index` (pid {holder}) is writing {layout.root}: "
                "try again when it finishes"
            ) from exc
        try:
            yield
        finally:
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

    New and changed articles are chunked and embedded; unchanged ones cost no model call;
    removed ones leave the vectors, BM25 and catalog. Chunks that the store and the catalog
    disagree on (after an interrupted run) are repaired. A file, folder or record that cannot
    be read is skipped and reported; the articles indexed from it before are kept.

    Args:
        settings: where the corpus and the index are, and how to chunk.
        embedder: the model; it must be the one the index was built with.
        rebuild: drop the index and build it anew (after a model or chunking change).
        strict: refuse to change the index if any file or record cannot be read.
        progress: told how embedding advances.

    Returns:
        What was added, updated, removed, left unchanged, repaired, kept and skipped.

    Raises:
        CorpusError, CorpusProblemsError (strict), IndexMismatchError, IndexBusyError,
        StoreUnavailableError.
    """
    started = time.perf_counter()
    layout = IndexLayout(settings.index_dir)
    with writer_lock(layout):
        scan = scan_corpus(settings.corpus_dir, indexed_paths=_indexed_paths(layout))
        if strict and scan.problems:
            raise CorpusProblemsError(scan.problems)
        catalog = Catalog(layout.catalog)
        store: VectorStore | None = None
        try:
            store = _open_store(settings, catalog, rebuild)
            report = _sync(
                settings,
                embedder,
                catalog,
                store,
                layout,
                scan,
                rebuild,
                progress,
            )
            report.seconds = time.perf_counter() - started
            return report
        finally:
            if store is not None:
                store.close()
            catalog.close()


def _indexed_paths(layout: IndexLayout) -> dict[str, str]:
    """Article id → the file it was indexed from; empty (and nothing created) without an index."""
    if not layout.exists():
        return {}
    catalog = Catalog(layout.catalog)
    try:
        return {aid: path for aid, (_, path) in catalog.hashes().items()}
    finally:
        catalog.close()


def _open_store(settings: Settings, catalog: Catalog, rebuild: bool) -> VectorStore:
    try:
        return VectorStore(settings, owner=catalog.index_id())
    except IndexMismatchError:
        if not rebuild:
            raise
    # --rebuild replaces whatever holds the collection with this index's own.
    VectorStore.delete_collection(settings)
    return VectorStore(settings, owner=catalog.index_id())


def _sync(
    settings: Settings,
    embedder: Embedder,
    catalog: Catalog,
    store: VectorStore,
    layout: IndexLayout,
    scan: CorpusScan,
    rebuild: bool,
    progress: Progress | None,
) -> IndexReport:
    wanted = manifest_for(settings, embedder.name)
    recorded = catalog.get_meta("manifest")
    if rebuild:
        store.drop()
        catalog.replace_articles([], list(catalog.hashes()), _now())
        catalog.set_meta("manifest", None)
        recorded = None
    else:
        check_manifest(recorded, wanted, settings.index_dir)

    old = catalog.hashes()
    articles = scan.articles
    report = IndexReport()
    current = {a.id: a for a in articles}
    gone = sorted(aid for aid in old if aid not in current)
    report.kept = [aid for aid in gone if scan.failed(old[aid][1])]
    report.removed = [aid for aid in gone if not scan.failed(old[aid][1])]
    report.problems = _note_kept(scan.problems, [old[aid][1] for aid in report.kept])
    if not articles and report.removed:
        raise CorpusError(
            f"no articles found in {settings.corpus_dir}; refusing to empty an index of "
            f"{len(old)} articles (use --rebuild to really start from nothing)"
        )
    repair = _articles_to_repair(catalog, store, set(current))
    changed: list[Article] = []
    for article in articles:
        if article.id not in old:
            report.added.append(article.id)
            changed.append(article)
        elif old[article.id][0] != article.content_hash:
            report.updated.append(article.id)
            changed.append(article)
        elif article.id in repair:
            report.repaired.append(article.id)
            changed.append(article)
        else:
            report.unchanged += 1

    if changed:
        check_fits(embedder, Chunker.window_needed(settings.chunk_tokens))
        chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        report.chunks_embedded = _embed_and_write(
            embedder, chunker, catalog, store, changed, progress
        )
    # The dimension follows from the model (already checked): record it, don't compare it.
    wanted["dimension"] = embedder.dimension if changed else (recorded or {}).get("dimension")

    if report.removed:
        store.delete(catalog.chunk_ids(report.removed))
        catalog.replace_articles([], report.removed, _now())

    if changed or report.removed or rebuild or not layout.bm25.exists():
        _rebuild_lexical(catalog, layout)
    catalog.set_meta("manifest", wanted)
    catalog.set_meta("last_indexed", _now())
    report.chunks_total = catalog.counts()[1]
    if changed or report.removed or rebuild:
        layout.bump_generation()
    return report


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


def _articles_to_repair(catalog: Catalog, store: VectorStore, current: set[str]) -> set[str]:
    """Drop vectors the catalog does not know; name articles whose vectors are missing."""
    in_store = store.ids()
    in_catalog = set(catalog.chunk_ids())
    orphans = sorted(in_store - in_catalog)
    if orphans:
        store.delete(orphans)
    missing = in_catalog - in_store
    if not missing:
        return set()
    passages = catalog.passages(sorted(missing))
    return {p.article.id for p in passages.values()} & current


def _embed_and_write(
    embedder: Embedder,
    chunker: Chunker,
    catalog: Catalog,
    store: VectorStore,
    changed: list[Article],
    progress: Progress | None,
) -> int:
    planned = [(article, chunker.split(article)) for article in changed]
    total = sum(len(chunks) for _, chunks in planned)
    done = 0
    if progress:
        progress("embed", 0, total)
    for group in _groups(planned, GROUP_CHUNKS):
        chunks = [c for _, cs in group for c in cs]
        titles = {a.id: a for a, _ in group}
        texts = [chunker.embed_text(titles[c.article_id].title, c) for c in chunks]
        vectors = _embed_sorted(embedder, texts)
        stale = catalog.chunk_ids([a.id for a, _ in group])
        new_ids = {c.id for c in chunks}
        leftover = [cid for cid in stale if cid not in new_ids]
        if leftover:
            store.delete(leftover)
        if chunks:
            store.upsert(
                [c.id for c in chunks],
                vectors,
                [_chunk_meta(titles[c.article_id], c) for c in chunks],
            )
        catalog.replace_articles(group, [], _now())
        done += len(chunks)
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


def _chunk_meta(article: Article, chunk: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {"article_id": article.id, "ord": chunk.ord}
    if article.source:
        meta["source"] = article.source
    if article.published:
        meta["published"] = article.published
    return meta


def _rebuild_lexical(catalog: Catalog, layout: IndexLayout) -> None:
    ids: list[str] = []
    texts: list[str] = []
    for chunk_id, title, text in catalog.iter_chunk_texts():
        ids.append(chunk_id)
        texts.append(f"{title}\n{text}")
    LexicalIndex.build(ids, texts).save(layout.bm25)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
