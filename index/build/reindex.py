"""Reindexing: bring the vectors, BM25 and catalog in line with the corpus folder."""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field

from index.build.cleanup import clean_up
from index.build.generation import BuildPlan, GenerationBuild, LiveSummary
from index.build.progress import Progress
from index.build.repair import Repairs, open_checked
from index.build.stories import Syndication, stories_current
from index.errors import (
    ArticleError,
    CorpusError,
    CorpusProblemsError,
    IndexDamagedError,
    VectorsMissingError,
)
from index.ingest.corpus.file_stats import FileStatsRecord, KnownFiles
from index.ingest.corpus.scan import CorpusScan, scan_corpus
from index.models.embeddings import Embedder
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.layout import CHROMA_FOLDER, Generation, IndexLayout
from index.store.manifest import check_manifest, manifest_for
from index.store.vectors import CHROMA_SQLITE, VectorStore
from index.store.writer_lock import writer_lock


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
    # The index in service had no stories (it is from before them): its articles were
    # grouped into stories from their indexed text (no model call).
    stories_grouped: bool = False
    # Damaged segments of the index in service, and how each was repaired (a line each).
    segments_repaired: list[str] = field(default_factory=list)
    # Articles that are a syndicated copy of another (`index.build.stories`), and their stories.
    copies: int = 0
    stories: int = 0
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


def reindex(
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    strict: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    """Index `settings.corpus_dir` into `settings.index_dir`.

    The index in service is never written: the next generation is built beside it, sharing
    its segments and writing only what changed as a new one (unchanged articles cost no
    model call, nor any write), checked, and switched to in one atomic step. Readers keep
    answering from the old generation meanwhile. A run that is killed leaves the generation
    in service as it was; the next run resumes the build where it stopped. With nothing
    changed, no generation is built.

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
    with writer_lock(layout), ExitStack() as opened:
        live = layout.current()
        # Opened once and handed along: opening a catalog attaches every segment.
        catalog, repairs = _open_live(live, settings, rebuild=rebuild)
        if catalog is not None:
            opened.enter_context(closing(catalog))
        base = _read_live(catalog, rebuild=rebuild)
        record = FileStatsRecord.of(settings.index_dir)
        known = None
        if live is not None and not rebuild:
            known = record.load(live.name, base.index_id, settings.corpus_dir, base.hashes)
        scanned_ns = time.time_ns()
        scan = scan_corpus(
            settings.corpus_dir,
            indexed_paths={aid: path for aid, (_, path) in base.hashes.items()},
            index_dir=settings.index_dir,
            known=known,
        )
        if strict and scan.problems:
            raise CorpusProblemsError(scan.problems)
        wanted = manifest_for(settings, embedder.name)
        if not rebuild:
            check_manifest(base.manifest, wanted, settings.index_dir)
        report = _plan(settings, scan, base.hashes, rebuild=rebuild)
        if not rebuild:
            report.segments_repaired = repairs.lines()
        if live is not None and live.number and not rebuild and not report.changed:
            report.vectors_restored = not _store_whole(settings, base, set(repairs.rebuilt))
            report.stories_grouped = not base.stories_current
        if (
            live is not None
            and live.number
            and not rebuild
            and not report.changed
            and not report.vectors_restored
            and not report.stories_grouped
            and not repairs
        ):
            shutil.rmtree(layout.building, ignore_errors=True)  # a killed build, now moot
            clean_up(layout, live.number)
            report.chunks_total = base.chunks
            report.copies, report.stories = base.copies
            _record_stats(record, live, base.index_id, settings, scan, known, scanned_ns)
        else:
            plan = BuildPlan(
                manifest=wanted,
                articles=scan.articles,
                kept=report.kept,
                planned={*report.added, *report.updated, *report.kept},
                rebuild=rebuild,
                vectors_restored=report.vectors_restored,
                unread=set(scan.unread),
                full=report.vectors_restored or report.stories_grouped,
                repair=frozenset(repairs.rebuilt) if not rebuild else frozenset(),
            )
            built = GenerationBuild(settings, embedder, layout, progress).run(live, base, plan)
            now = layout.current()
            if now is not None:
                _record_stats(record, now, built.index_id, settings, scan, None, scanned_ns)
            report.repaired = built.repaired
            report.chunks_embedded = built.chunks_embedded
            report.chunks_total = built.chunks_total
            report.copies, report.stories = built.copies
        report.seconds = time.perf_counter() - started
        return report


def _open_live(
    live: Generation | None, settings: Settings, *, rebuild: bool
) -> tuple[Catalog | None, Repairs]:
    """The catalog of the generation in service, its segments checked byte for byte (those
    whose catalog is damaged left out), and what repairs the damaged ones. A rebuild does
    without it if its own catalog cannot be read."""
    if live is None:
        return None, Repairs()
    try:
        return open_checked(live, embedded=not settings.chroma_host)
    except IndexDamagedError:
        if not rebuild:
            raise
        return None, Repairs()


def _record_stats(  # noqa: PLR0913
    record: FileStatsRecord,
    live: Generation,
    index_id: str | None,
    settings: Settings,
    scan: CorpusScan,
    known: KnownFiles | None,
    scanned_ns: int,
) -> None:
    """Record the stats of the files `scan` read or left unread, for the generation in
    service `live` (it holds their articles as read); not again if they are as recorded."""
    if known is not None and known.stats == scan.stats:
        return
    record.save(live.name, index_id, settings.corpus_dir, scan.stats, scanned_ns)


def _read_live(catalog: Catalog | None, *, rebuild: bool) -> LiveSummary:
    """What the generation in service says about itself (its `catalog`, None without one).

    A rebuild needs nothing of it but its identity and the articles it keeps from files that
    cannot be read now: if it cannot be read (damaged past what was checked), it starts
    from nothing.
    """
    if catalog is None:
        return LiveSummary()
    if rebuild:
        try:
            return _summary(catalog)
        except (sqlite3.DatabaseError, ValueError):
            return LiveSummary()
    return _summary(catalog)


def _summary(catalog: Catalog) -> LiveSummary:
    return LiveSummary(
        catalog=catalog,
        hashes=catalog.hashes(),
        manifest=catalog.get_meta("manifest"),
        index_id=catalog.get_meta("index_id"),
        chunks=catalog.counts()[1],
        copies=catalog.copy_count(),
        stories_current=stories_current(catalog, Syndication()),
    )


def _store_whole(settings: Settings, base: LiveSummary, repaired: set[str]) -> bool:
    """Whether the store holds the vectors of every segment of the generation in service.

    A Chroma server that lost its data (a collection missing, or short of vectors), or a
    deleted `chroma/` folder, is mended by building a new generation: its vectors come from
    the catalog. The embedded store's folders are only looked at, never opened here: Chroma
    writes to a store it opens, and segments are never written once complete (readers may be
    copying them).
    """
    segments = base.catalog.segments() if base.catalog is not None else []
    segments = [s for s in segments if s.name not in repaired]  # rebuilt anyway
    if base.index_id is None or any(s.collection is None for s in segments):
        return False
    if not settings.chroma_host:
        return all((s.folder / CHROMA_FOLDER / CHROMA_SQLITE).is_file() for s in segments)
    for segment in segments:
        try:
            store = VectorStore(
                settings, owner=base.index_id, path=segment.folder, name=str(segment.collection)
            )
        except VectorsMissingError:
            return False
        try:
            if store.count() != segment.chunks:
                return False
        finally:
            store.close()
    return True


def _plan(
    settings: Settings, scan: CorpusScan, old: dict[str, tuple[str, str]], *, rebuild: bool
) -> IndexReport:
    """What the corpus changed since the index `old` (article id → hash, path).

    A rebuild starts from nothing, so every article read is added; it still keeps the
    articles of `old` whose file, line or folder can no longer be read.
    """
    report = IndexReport()
    current = {a.id for a in scan.articles} | scan.unread.keys()
    gone = sorted(aid for aid in old if aid not in current)
    report.kept = [aid for aid in gone if scan.failed(old[aid][1])]
    report.problems = _note_kept(scan.problems, [old[aid][1] for aid in report.kept])
    if rebuild:
        report.added = [a.id for a in scan.articles]
        return report
    report.removed = [aid for aid in gone if not scan.failed(old[aid][1])]
    if not current and report.removed:
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
    report.unchanged += len(scan.unread)
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
