"""`Newsbot`: an opened index that answers questions. The adapters (CLI, bot) hold one."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from index.answer import Answer, Composer
from index.catalog import Catalog
from index.embeddings import Embedder
from index.errors import IndexMissingError, NewsbotError
from index.indexer import check_manifest, manifest_for
from index.layout import IndexLayout
from index.lexical import LexicalIndex
from index.retrieval import Filters, Retriever
from index.settings import Settings
from index.store import VectorStore

MAX_QUESTION_CHARS = 2000


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
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.layout = IndexLayout(settings.index_dir)
        self._lock = threading.Lock()
        self._generation = -1
        self._open()

    def _open(self) -> None:
        if not self.layout.exists():
            raise IndexMissingError(
                f"no index in {self.settings.index_dir}: run `newsbot index` first"
            )
        generation = self.layout.generation()
        catalog = Catalog(self.layout.catalog)
        recorded = catalog.get_meta("manifest")
        if recorded is None:
            catalog.close()
            raise IndexMissingError(
                f"the index in {self.settings.index_dir} is empty: run `newsbot index`"
            )
        check_manifest(
            recorded, manifest_for(self.settings, self.embedder.name), self.settings.index_dir
        )
        self.manifest = recorded
        self.catalog = catalog
        self.store = VectorStore(self.settings, owner=catalog.index_id())
        self.lexical = LexicalIndex.load(self.layout.bm25)
        self.retriever = Retriever(
            self.store, self.lexical, self.catalog, max_per_article=self.settings.max_per_article
        )
        self.composer = Composer(
            self.embedder, self.lexical.terms, min_support=self.settings.min_support
        )
        self._generation = generation

    def refresh(self) -> bool:
        """Reopen the index if a reindex completed since it was opened; True if it did."""
        with self._lock:
            if self.layout.generation() == self._generation:
                return False
            self.store.close()
            self.catalog.close()
            self._open()
            return True

    def ask(self, question: str, *, k: int | None = None, filters: Filters | None = None) -> Answer:
        """Answer `question` from the index, citing at most `k` passages.

        Raises:
            NewsbotError: the question is empty; StoreUnavailableError: the store is down.
        """
        started = time.perf_counter()
        question = " ".join(question.split())
        if not question:
            raise NewsbotError("the question is empty")
        question = question[:MAX_QUESTION_CHARS]
        self.refresh()
        vector = self.embedder.embed_query(question)
        hits = self.retriever.search(question, vector, k=k or self.settings.top_k, filters=filters)
        answer = self.composer.compose(question, vector, hits)
        latency = (time.perf_counter() - started) * 1000
        return Answer(
            answer.question, answer.found, answer.answer, answer.citations, round(latency, 1)
        )

    def status(self) -> Status:
        """Counts and build settings of the open index."""
        self.refresh()
        articles, chunks = self.catalog.counts()
        manifest = self.manifest
        return Status(
            index_dir=str(self.settings.index_dir),
            store=self.store.location,
            articles=articles,
            chunks=chunks,
            vectors=self.store.count(),
            model=manifest.get("model"),
            dimension=manifest.get("dimension"),
            chunk_tokens=manifest.get("chunk_tokens"),
            chunk_overlap=manifest.get("chunk_overlap"),
            size_bytes=self.layout.size_bytes(),
            last_indexed=self.catalog.get_meta("last_indexed"),
            generation=self.layout.generation(),
        )

    def close(self) -> None:
        self.store.close()
        self.catalog.close()
