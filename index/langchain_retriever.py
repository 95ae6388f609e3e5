"""`NewsbotRetriever`: newsbot's hybrid retriever as a LangChain retriever, for your own
chains and agents (see docs/langchain.md)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from index.ingest.corpus.metadata import normalise_date
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot, prepared
from index.records import Hit
from index.search.retrieval import Filters
from index.settings import Settings


class NewsbotRetriever(BaseRetriever):
    """The passages newsbot answers from, best first, as LangChain `Document`s.

    A document's `page_content` is the passage, exactly `article_text[start:end]`; its `id`
    is the passage's chunk id; its `metadata` holds `article_id`, `chunk_id`, `title`,
    `source` (the outlet), `published` (YYYY-MM-DD), `url`, `author` (each None when the
    article does not say), `ord` (the passage's place in its article), `start`, `end`,
    `score`, `rank` (1 = best) and `also_reported_by` (the story's other copies, each a dict
    of `article_id`, `title`, `source`, `url`, `published`; empty when it has none).

    An empty query raises `NewsbotError`; a store that is down, `StoreUnavailableError`.
    The retriever may be used from several threads (and `ainvoke`) at once: the `Newsbot`
    takes the questions in turn.
    """

    # A misspelt option (`outlet=`) is an error, not a filter silently left out.
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    newsbot: Newsbot
    """The open index searched."""
    k: int | None = Field(default=None, ge=1)
    """Passages returned, at most (default: the settings' `top_k`, `NEWSBOT_TOP_K`)."""
    source: str | None = None
    """Only articles from this outlet (case does not matter)."""
    since: str | None = None
    """Only articles published on or after this date (YYYY-MM-DD)."""
    until: str | None = None
    """Only articles published on or before this date (YYYY-MM-DD)."""
    article_ids: frozenset[str] | None = None
    """Only these articles."""
    asked_on: str | None = None
    """When the questions are asked (YYYY-MM-DD; default today): later articles are left
    out, and those published shortly before rank higher."""

    @field_validator("since", "until", "asked_on")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        day = normalise_date(value)
        if day is None:
            raise ValueError(f"not a date: {value!r} (use e.g. 2024-01-05)")
        return day

    @classmethod
    def from_settings(cls, settings: Settings, **fields: Any) -> NewsbotRetriever:
        """A retriever over the index `settings` name, opened with its query embedder as
        `newsbot ask` opens it; `fields` are the retriever's other fields (`k`, `source`...).

        Raises:
            IndexMissingError, IndexMismatchError, StoreUnavailableError.
        """
        return cls(newsbot=Newsbot(settings, load_embedder(settings, purpose="query")), **fields)

    @property
    def filters(self) -> Filters:
        """The limits on which articles may be returned."""
        return Filters(
            source=self.source, since=self.since, until=self.until, article_ids=self.article_ids
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        question, asked_on = prepared(query, self.asked_on)
        hits = self.newsbot.search(
            question,
            k=self.k or self.newsbot.settings.top_k,
            filters=self.filters or None,
            asked_on=asked_on,
        )
        return [document(hit, rank) for rank, hit in enumerate(hits, start=1)]


def document(hit: Hit, rank: int) -> Document:
    """The LangChain document of the `rank`-th hit (1 = best)."""
    chunk, article = hit.passage.chunk, hit.passage.article
    return Document(
        id=chunk.id,
        page_content=chunk.text,
        metadata={
            "article_id": article.id,
            "chunk_id": chunk.id,
            "title": article.title,
            "source": article.source,
            "published": article.published,
            "url": article.url,
            "author": article.author,
            "ord": chunk.ord,
            "start": chunk.start,
            "end": chunk.end,
            "score": hit.score,
            "rank": rank,
            "also_reported_by": [
                {
                    "article_id": a.id,
                    "title": a.title,
                    "source": a.source,
                    "url": a.url,
                    "published": a.published,
                }
                for a in hit.copies
            ],
        },
    )
