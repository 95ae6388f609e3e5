"""`Newsbot`: an opened index that answers questions. The adapters (CLI, bot) hold one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from index.answer import Answer, Composer
from index.articles import normalise_date
from index.catalog import Catalog
from index.embeddings import Embedder
from index.errors import IndexBusyError, IndexMissingError, NewsbotError
from index.indexer import check_manifest, manifest_for, reader_lock
from index.layout import IndexLayout
from index.lexical import LexicalIndex
from index.retrieval import Filters, Retriever
from index.settings import Settings
from index.store import VectorStore, is_store_error

MAX_QUESTION_CHARS = 2000

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


class Newsbot:
    """Answers questions from the index in `settings.index_dir`.

    It notices a completed reindex (by another process) and reopens the index before the
    next question, so a long-running bot answers from the newest index without a restart.
    While a reindex is writing, it keeps answering from the index it has open (whose catalog
    the writer updates as it goes), and reopens once the writer is done.

    Its methods may be called from several threads at once; they take turns.
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        """Open the index.

        Raises:
            IndexMissingError, IndexMismatchError; IndexBusyError: a reindex is writing it.
        """
        self.settings = settings
        self.embedder = embedder
        self.layout = IndexLayout(settings.index_dir)
        # One lock for everything: the catalog connection, the store client and bm25s are
        # shared, and `refresh` replaces them. Questions take turns (they are CPU-bound).
        self._lock = threading.RLock()
        self._generation = -1
        if not self.layout.exists():
            raise IndexMissingError(
                f"no index in {self.settings.index_dir}: run `newsbot index` first"
            )
        with reader_lock(self.layout):
            self._open()

    def _open(self) -> None:
        """Open the catalog, store and BM25 index; the caller holds `reader_lock`."""
        generation = self.layout.generation()
        catalog = Catalog(self.layout.catalog)
        recorded = catalog.get_meta("manifest")
        if recorded is None:
            catalog.close()
            raise IndexMissingError(
                f"the index in {self.settings.index_dir} is empty: run `newsbot index`"
            )
        with ExitStack() as on_error:
            on_error.callback(catalog.close)
            check_manifest(
                recorded, manifest_for(self.settings, self.embedder.name), self.settings.index_dir
            )
            store = VectorStore(self.settings, owner=catalog.index_id())
            on_error.callback(store.close)
            store.load(recorded.get("dimension"))
            lexical = LexicalIndex.load(self.layout.bm25)
            on_error.pop_all()
        self.manifest = recorded
        self.catalog = catalog
        self.store = store
        self.lexical = lexical
        self.retriever = Retriever(
            self.store,
            self.lexical,
            self.catalog,
            max_per_article=self.settings.max_per_article,
            recency_half_life=self.settings.recency_half_life,
        )
        self.composer = Composer(self.lexical.terms, min_support=self.settings.min_support)
        self._generation = generation

    def _reopen(self) -> bool:
        """Close and reopen the index, unless a reindex is writing it; True if reopened."""
        with ExitStack() as held:
            try:
                held.enter_context(reader_lock(self.layout))
            except IndexBusyError:
                return False
            # Close first: the embedded store keeps one client per folder in a process, and
            # only a new one sees what another process wrote.
            self.store.close()
            self.catalog.close()
            self._open()
        return True

    def refresh(self) -> bool:
        """Reopen the index if a reindex completed since it was opened; True if it did.

        While a reindex is still writing (the next one may already have started) the open
        index is kept: opening the store mid-write would break it.
        """
        with self._lock:
            if self.layout.generation() == self._generation:
                return False
            return self._reopen()

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        """Answer `question` from the index, citing at most `k` passages.

        `asked_on` (a date, e.g. 2024-01-05) is when the question was asked; by default,
        today.

        Raises:
            NewsbotError: the question is empty or `asked_on` is not a date;
            StoreUnavailableError: the store is down.
            IndexBusyError: `newsbot index --rebuild` dropped the vectors and is still
                writing new ones.
        """
        started = time.perf_counter()
        question = " ".join(question.split())
        if not question:
            raise NewsbotError("the question is empty")
        question = question[:MAX_QUESTION_CHARS]
        if asked_on is not None:
            day = normalise_date(asked_on)
            if day is None:
                raise NewsbotError(f"not a date: {asked_on!r} (use e.g. 2024-01-05)")
            asked_on = day
        with self._lock:
            self.refresh()
            vector = self.embedder.embed_query(question)
            hits = self._retrying(
                lambda: self.retriever.search(
                    question, vector, k=k or self.settings.top_k, filters=filters, asked_on=asked_on
                )
            )
            answer = self.composer.compose(question, hits)
        latency = (time.perf_counter() - started) * 1000
        return Answer(
            answer.question, answer.found, answer.answer, answer.citations, round(latency, 1)
        )

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, tried again once on a reopened index if the store failed under it.

        A store opened before another process's reindex keeps working through it, except
        that `--rebuild` deletes its collection (Chroma's NotFoundError).
        """
        try:
            return call()
        except Exception as exc:
            if not is_store_error(exc):
                raise
            if not self._reopen():
                raise IndexBusyError(
                    f"`newsbot index` is rewriting {self.settings.index_dir}: "
                    "try again when it finishes"
                ) from exc
        return call()

    def status(self) -> Status:
        """Counts and build settings of the open index."""
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
                generation=self.layout.generation(),
            )

    def close(self) -> None:
        with self._lock:
            self.store.close()
            self.catalog.close()
