"""`Newsbot`: an opened index that answers questions. The adapters (CLI, bot) hold one."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from index.answer.answerer import build_answerer
from index.answer.conversation import Rewriter, Turn, default_rewriter, recent
from index.answer.types import Answer, Answerer, Citation
from index.errors import (
    IndexDamagedError,
    IndexMissingError,
    NewsbotError,
    QuestionError,
    SegmentDamagedError,
    SegmentMissingError,
    VectorsMissingError,
)
from index.ingest.corpus.metadata import normalise_date
from index.models.chat import load_chat_model
from index.models.embeddings import Embedder
from index.search.ranking import Ranking
from index.search.retrieval import Filters, Hit, Retriever
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.catalog.schema import is_damage
from index.store.integrity import check_files
from index.store.layout import BM25_FOLDER, CHROMA_FOLDER, Generation, IndexLayout
from index.store.lexical import LexicalIndex
from index.store.manifest import check_manifest, manifest_for
from index.store.segments import SegmentedLexical, SegmentedVectors
from index.store.vectors import VectorStore, collection_name, is_store_error
from index.text import question_text

if TYPE_CHECKING:  # LangChain is imported only when a model is used
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger("newsbot")

# How many times `verify` looks again when the generation it checked went out of service.
VERIFY_TRIES = 3
# Passages handed to the answer step, which orders them and cites at most `k`.
ANSWER_POOL = 10

T = TypeVar("T")


@dataclass(frozen=True)
class Status:
    """What `newsbot status` shows."""

    index_dir: str
    store: str
    articles: int
    chunks: int
    vectors: int
    model: str | None
    dimension: int | None
    chunk_tokens: int | None
    chunk_overlap: int | None
    size_bytes: int
    last_indexed: str | None
    generation: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prepared(question: str, asked_on: str | None) -> tuple[str, str | None]:
    """`question` cleaned and checked (`index.text.question_text`), and `asked_on` as an ISO
    date.

    Raises:
        QuestionError: the question is empty or too long (`MAX_QUESTION_CHARS`);
        NewsbotError: `asked_on` is not a date.
    """
    question = question_text(question)
    if asked_on is None:
        return question, None
    day = normalise_date(asked_on)
    if day is None:
        raise NewsbotError(f"not a date: {asked_on!r} (use e.g. 2024-01-05)")
    return question, day


class Newsbot:
    """Answers questions from the index in `settings.index_dir`.

    It answers from the generation in service when it opened, and switches to a newer one
    (built by a reindex in any process) before the next question. Generations are never
    written once complete, so a reindex running meanwhile disturbs nothing; and answering
    writes nothing under the index folder, so it works on a read-only one or a full disk.

    Its methods may be called from several threads at once; they take turns.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        *,
        answerer: Answerer | None = None,
        ranking: Ranking | None = None,
        rewriter: Rewriter | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        """Open the index.

        Args:
            settings: where the index is, and the settings it must have been built with.
            embedder: the model that embeds questions (the index's own).
            answerer: the answer step (default: the extractive one, weighted by `settings`;
                with a chat model, the model's, the extractive one its fallback).
            ranking: the retriever's weights (default: `Ranking.from_settings(settings)`).
            rewriter: makes a follow-up stand alone (default: the chat model's, falling back
                on the rule; without one, the rule).
            chat_model: the chat model that writes answers and rewrites follow-ups (default:
                the one `NEWSBOT_LLM` names, when no `answerer` is given; else none).

        Raises:
            IndexMissingError, IndexMismatchError, StoreUnavailableError;
            ConfigError: `NEWSBOT_LLM` names a model whose provider package is missing.
        """
        self.settings = settings
        self.embedder = embedder
        if chat_model is None and answerer is None:
            chat_model = load_chat_model(settings)
        self.answerer = answerer or build_answerer(settings, chat_model=chat_model)
        self.rewriter = rewriter or default_rewriter(chat_model, settings.llm_timeout)
        self.ranking = ranking or Ranking.from_settings(settings)
        self.layout = IndexLayout(settings.index_dir)
        # One lock for everything: the catalog connection, the store client and bm25s are
        # shared, and `refresh` replaces them. Questions take turns (they are CPU-bound).
        self._lock = threading.RLock()
        generation = self.layout.current()
        damage = self.layout.current_damage() if generation is None else None
        if damage is not None:
            raise IndexDamagedError(
                f"the index in {settings.index_dir} is damaged: {damage}: run `newsbot index` "
                "to build it anew from the corpus"
            )
        if generation is None:
            raise IndexMissingError(
                f"no index in {self.settings.index_dir}: run `newsbot index` first"
            )
        self._open(generation)

    def _open(self, generation: Generation, *, anew: bool = False) -> None:
        """Open the generation's catalog, and its segments' stores and BM25 indexes; keep the
        old ones on failure.

        The segments it shares with the generation open before are not opened again (their
        files never change); `anew` opens every one again.
        """
        catalog = Catalog(generation.catalog, writable=False)
        opened: dict[str, tuple[VectorStore, LexicalIndex]] = {}
        cached = {} if anew else getattr(self, "_segments", {})
        with ExitStack() as on_error:
            on_error.callback(catalog.close)
            recorded = catalog.get_meta("manifest")
            if recorded is None:
                raise IndexMissingError(
                    f"the index in {self.settings.index_dir} is empty: run `newsbot index`"
                )
            check_manifest(
                recorded, manifest_for(self.settings, self.embedder.name), self.settings.index_dir
            )
            owner = catalog.get_meta("index_id") or ""
            segments = catalog.segments()
            for segment in segments:
                if segment.name in cached:
                    opened[segment.name] = cached[segment.name]
                    continue
                name = segment.collection or collection_name(
                    self.settings, owner, generation.number
                )
                folder = generation.root if generation.number == 0 else segment.folder
                damaged = partial(SegmentDamagedError, self.settings.index_dir, _where(folder))
                if segment.files is not None:  # as sealed: sizes and heads (a few stats)
                    damage = check_files(folder, segment.files)
                    if damage is not None:
                        raise damaged(str(damage))
                with _unreadable(damaged, CHROMA_FOLDER):
                    # Read-only: answering works on a read-only index and a full disk, and
                    # never changes a generation (embedded Chroma writes whatever it opens).
                    store = VectorStore(
                        self.settings,
                        owner=owner,
                        path=folder / CHROMA_FOLDER,
                        name=name,
                        read_only=True,
                    )
                    on_error.callback(store.close)
                    store.load(recorded.get("dimension"))
                with _unreadable(damaged, BM25_FOLDER):
                    lexical = LexicalIndex.load(folder / BM25_FOLDER)
                if catalog.segmented:  # each part holds every chunk of the segment's catalog
                    _check_counts(damaged, segment.chunks, lexical.size, store, self.settings)
                opened[segment.name] = (store, lexical)
            on_error.pop_all()
        old_catalog = getattr(self, "catalog", None)
        stale = [store for name, (store, _) in cached.items() if name not in opened]
        if anew:
            stale = [store for store, _ in getattr(self, "_segments", {}).values()]
        self.generation = generation
        self.manifest = recorded
        self.catalog = catalog
        self._segments = opened
        self.store = SegmentedVectors(
            [(opened[s.name][0], s.dead_chunks, s.chunks) for s in segments]
        )
        self.lexical = SegmentedLexical.of([(opened[s.name][1], s.dead_chunks) for s in segments])
        self.retriever = Retriever(self.store, self.lexical, self.catalog, self.ranking)
        for part in [*stale, old_catalog]:
            if part is not None:
                part.close()

    def refresh(self) -> bool:
        """Switch to the generation in service if it changed since; True if it did."""
        with self._lock:
            generation = self.layout.current()
            if generation is None or generation == self.generation:
                return False
            try:
                self._open(generation)
            except (SegmentMissingError, IndexDamagedError) as exc:  # a copy being made
                log.warning("still answering from %s: %s", self.generation.name, exc)
                return False
            return True

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        asked_on: str | None = None,
        history: Sequence[Turn] = (),
        more: int = 0,
    ) -> Answer:
        """Answer `question` from the index, citing at most `k` passages.

        `asked_on` (a date, e.g. 2024-01-05) is when the question was asked; by default,
        today. `history` is the conversation so far, oldest turn first: a follow-up is
        rewritten to stand alone with its last `NEWSBOT_CHAT_TURNS` turns before it is
        answered, and the answer's `question` is the rewritten one (`follow_up` what was
        asked). `more`: how many further passages, beyond those the answer ranks, the
        answer's `more` lists (the answer itself is the same whatever `more` is).

        Raises:
            QuestionError: the question is empty or too long;
            NewsbotError: `asked_on` is not a date;
            StoreUnavailableError: the store is down.
        """
        started = time.perf_counter()
        question, asked_on = prepared(question, asked_on)
        asked = question
        turns = recent(history, self.settings.chat_turns)
        if turns:  # outside the lock: a model's rewrite may take a while
            question = self._standalone(question, turns)
        limit = k or self.settings.top_k
        pool = max(limit, ANSWER_POOL)
        with self._lock:
            hits = self.search(question, k=pool + more, filters=filters, asked_on=asked_on)
            if more and pool + more > max(pool, self.ranking.rerank_pool):
                # Past the re-ranked pool, more passages would re-rank the first ones: the
                # answer step gets those it gets without `more`.
                answered = self.search(question, k=pool, filters=filters, asked_on=asked_on)
            else:
                answered = hits[:pool]
            answer = self.answerer.compose(question, answered, limit=limit, asked_on=asked_on)
        latency = (time.perf_counter() - started) * 1000
        follow_up = asked if question != asked else None
        return replace(
            answer,
            latency_ms=round(latency, 1),
            follow_up=follow_up,
            more=_beyond(answer, hits, more),
        )

    def _standalone(self, question: str, turns: Sequence[Turn]) -> str:
        """The follow-up `question` rewritten to stand alone; as asked if the rewrite is no
        question (empty, or too long)."""
        try:
            return question_text(self.rewriter.standalone(question, turns) or question)
        except QuestionError:
            return question

    def search(
        self,
        question: str,
        *,
        k: int,
        filters: Filters | None = None,
        asked_on: str | None = None,
    ) -> list[Hit]:
        """The `k` best passages for `question` (a plain, non-empty question; `asked_on` an
        ISO date or None), before the answer step."""
        with self._lock:
            self.refresh()
            vector = self.embedder.embed_query(question)
            return self._retrying(
                lambda: self.retriever.search(
                    question, vector, k=k, filters=filters, asked_on=asked_on
                )
            )

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, tried once more on the index reopened if the store failed under it.

        The generation a reader had open may have been deleted under it (two reindexes
        completed since its last question). A Chroma server that is down raises
        `StoreUnavailableError` as it is; its client reconnects by itself once the server is
        back.
        """
        try:
            return self._catalog_read(call)
        except Exception as exc:
            if not is_store_error(exc):  # a damaged catalog's one line is not
                raise
        self._open(self.layout.current() or self.generation, anew=True)
        try:
            return self._catalog_read(call)
        except Exception as exc:
            if not is_store_error(exc) or isinstance(exc, NewsbotError):
                raise
            raise self._damaged("the vectors", exc) from exc

    def _catalog_read(self, call: Callable[[], T]) -> T:
        """`call()`, a catalog SQLite finds damaged told in one line."""
        try:
            return call()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            raise self._damaged("a catalog", exc) from exc

    def _damaged(self, what: str, exc: Exception) -> IndexDamagedError:
        """Damage met while answering, past the checks made on opening (a file changed in
        its middle): one line; `newsbot index` checks every byte, and repairs."""
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return IndexDamagedError(
            f"the index in {self.settings.index_dir} is damaged: {what} of "
            f"{self.generation.name} cannot be read ({reason}): run `newsbot index` to repair it"
        )

    def verify(self) -> None:
        """Check every byte of the generation in service's segments against what was written
        (`index.store.integrity`); segments sealed before that was recorded are not
        verifiable.

        Raises:
            SegmentDamagedError: a file is missing, cut short or changed.
        """
        with self._lock:
            damage = None
            for _ in range(VERIFY_TRIES):
                self.refresh()
                generation = self.generation
                damage = self._first_damage()
                # Only the generation in service is damaged by a missing file: an older one's
                # segments may have been cleaned up by reindexes meanwhile.
                if damage is None or self.layout.current() == generation:
                    break
            if damage is not None:
                raise damage

    def _first_damage(self) -> SegmentDamagedError | None:
        for segment in self.catalog.segments():
            if segment.files is None:
                continue
            damage = check_files(segment.folder, segment.files, thorough=True)
            if damage is not None:
                return SegmentDamagedError(
                    self.settings.index_dir, _where(segment.folder), str(damage)
                )
        return None

    def status(self) -> Status:
        """Counts and build settings of the open index (`verify` checks its files)."""
        with self._lock:
            self.refresh()
            articles, chunks = self.catalog.counts()
            manifest = self.manifest
            return Status(
                index_dir=str(self.settings.index_dir),
                store=self.store.location,
                articles=articles,
                chunks=chunks,
                vectors=self._retrying(lambda: self.store.count()),
                model=manifest.get("model"),
                dimension=manifest.get("dimension"),
                chunk_tokens=manifest.get("chunk_tokens"),
                chunk_overlap=manifest.get("chunk_overlap"),
                size_bytes=self.layout.size_bytes(),
                last_indexed=self.catalog.get_meta("last_indexed"),
                generation=self.generation.number,
            )

    def warm_up(self) -> None:
        """Load the models now (the question's, and the answer step's if it has one), not
        on the first question."""
        self.embedder.warm_up()
        warm_answerer = getattr(self.answerer, "warm_up", None)  # optional in `Answerer`
        if warm_answerer is not None:
            warm_answerer()

    def close(self) -> None:
        with self._lock:
            for store, _ in self._segments.values():
                store.close()
            self.catalog.close()


def _where(folder: Path) -> str:
    """A segment's folder as named in messages: `segments/seg-000004` (or a generation's)."""
    return (
        f"{folder.parent.name}/{folder.name}" if folder.parent.name == "segments" else folder.name
    )


@contextmanager
def _unreadable(damaged: Callable[[str], SegmentDamagedError], part: str) -> Iterator[None]:
    """Turn a failure to read a segment's `part` (its BM25, its embedded Chroma) into
    `damaged`'s one line; a store that cannot be reached, or another newsbot error, passes."""
    try:
        yield
    except NewsbotError:
        raise
    except Exception as exc:
        if part == CHROMA_FOLDER and not is_store_error(exc):
            raise
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise damaged(f"{part}/ cannot be read ({reason})") from exc


def _check_counts(
    damaged: Callable[[str], SegmentDamagedError],
    chunks: int,
    in_bm25: int,
    store: VectorStore,
    settings: Settings,
) -> None:
    """Refuse a segment whose BM25 or vectors do not hold every chunk of its catalog (files
    lost from a segment sealed before its files were recorded)."""
    if in_bm25 != chunks:
        raise damaged(f"{BM25_FOLDER}/ holds {in_bm25:,} chunks, its catalog {chunks:,}")
    vectors = store.count()
    if vectors != chunks:
        if settings.chroma_host:
            raise VectorsMissingError(
                f"index unavailable: the collection {store.name!r} at {store.location} holds "
                f"{vectors:,} of {chunks:,} vectors: run `newsbot index` to restore it"
            )
        raise damaged(f"{CHROMA_FOLDER}/ holds {vectors:,} vectors, its catalog {chunks:,}")


def _beyond(answer: Answer, hits: Sequence[Hit], wanted: int) -> list[Citation]:
    """The first `wanted` of `hits` that `answer` neither cites nor ranks, as citations
    numbered on from its ranked ones."""
    taken = {(c.article_id, c.passage) for c in [*answer.ranked, *answer.citations]}
    rest = [h for h in hits if (h.passage.article.id, h.passage.chunk.text) not in taken][:wanted]
    start = len(answer.ranked) + 1
    return [Citation.of(hit, n) for n, hit in enumerate(rest, start=start)]
