"""The vector store: Chroma, embedded under the index folder or a Chroma server."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexMismatchError, StoreUnavailableError
from index.settings import Settings

CHROMA_DIR = "chroma"
# Collection metadata key naming the index (catalog) that owns the collection's vectors.
OWNER_KEY = "newsbot_index"
# Chroma rejects larger requests; stay well under its max batch size.
WRITE_BATCH = 1000


class VectorStore:
    """Chunk vectors by chunk id, with cosine distance.

    The collection is marked with the id of the index that owns it: on a shared Chroma
    server, two index folders pointed at one collection would otherwise delete each other's
    vectors as "orphans".
    """

    def __init__(self, settings: Settings, *, owner: str) -> None:
        self.settings = settings
        self.owner = owner
        self.location = _location(settings)
        with _unavailable(self.location):
            self._client = _client(settings)
            self._collection = self._open_collection()
            self._check_owner()

    def _open_collection(self) -> Any:
        return self._client.get_or_create_collection(
            self.settings.chroma_collection,
            embedding_function=None,  # vectors always come from our model; never a download
            configuration={"hnsw": {"space": "cosine"}},
            metadata={OWNER_KEY: self.owner},
        )

    def _check_owner(self) -> None:
        owner = (self._collection.metadata or {}).get(OWNER_KEY)
        if owner == self.owner:
            return
        name = self.settings.chroma_collection
        if owner is not None:
            raise IndexMismatchError(
                f"the Chroma collection {name!r} at {self.location} belongs to another newsbot "
                f"index: give {self.settings.index_dir} a collection of its own (CHROMA_COLLECTION)"
            )
        if self._collection.count():
            raise IndexMismatchError(
                f"the Chroma collection {name!r} at {self.location} holds vectors no newsbot "
                "index owns: set CHROMA_COLLECTION to another name, or "
                "`newsbot index --rebuild` to replace them"
            )
        self._collection.modify(metadata={OWNER_KEY: self.owner})

    def close(self) -> None:
        """Release the client. The embedded store caches one per folder in each process, so a
        reader must close it to see what another process wrote since."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def count(self) -> int:
        with _unavailable(self.location):
            return int(self._collection.count())

    def load(self, dimension: int | None) -> None:
        """Load the vectors now rather than on the first question.

        The embedded store reads its files and replays its write log on first use; a reader
        does that while it keeps writers out (see `index.indexer.reader_lock`).
        """
        if self.count() and dimension:
            probe = np.zeros(dimension, dtype=np.float32)
            probe[0] = 1.0
            self.query(probe, 1)

    def ids(self) -> set[str]:
        """Every chunk id the store holds."""
        with _unavailable(self.location):
            out: set[str] = set()
            offset = 0
            while True:
                got = self._collection.get(include=[], limit=10_000, offset=offset)
                out.update(got["ids"])
                if len(got["ids"]) < 10_000:
                    return out
                offset += 10_000

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        with _unavailable(self.location):
            for i in range(0, len(ids), WRITE_BATCH):
                self._collection.upsert(
                    ids=list(ids[i : i + WRITE_BATCH]),
                    embeddings=vectors[i : i + WRITE_BATCH],
                    metadatas=list(metadatas[i : i + WRITE_BATCH]),
                )

    def delete(self, ids: Sequence[str]) -> None:
        with _unavailable(self.location):
            for i in range(0, len(ids), WRITE_BATCH):
                self._collection.delete(ids=list(ids[i : i + WRITE_BATCH]))

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, cosine similarity) pairs, most similar first."""
        if n <= 0:
            return []
        with _unavailable(self.location):
            # n may exceed the collection's size: Chroma then returns what it has.
            result = self._collection.query(
                query_embeddings=[vector], n_results=n, include=["distances"]
            )
        ids = result["ids"][0]
        distances = (result.get("distances") or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    @staticmethod
    def delete_collection(settings: Settings) -> None:
        """Delete the settings' collection whoever owns it (for `--rebuild`)."""
        with _unavailable(_location(settings)):
            client = _client(settings)
            try:
                client.delete_collection(settings.chroma_collection)
            except Exception as exc:
                if _is_connection_error(exc):
                    raise
                # No such collection: nothing to delete.

    def drop(self) -> None:
        """Delete the whole collection and start an empty one owned by this index."""
        with _unavailable(self.location):
            try:
                self._client.delete_collection(self.settings.chroma_collection)
            except Exception as exc:
                if _is_connection_error(exc):
                    raise
            self._collection = self._open_collection()


def _location(settings: Settings) -> str:
    if settings.chroma_host:
        return f"chroma server {settings.chroma_host}:{settings.chroma_port}"
    return str(settings.index_dir / CHROMA_DIR)


@contextmanager
def _unavailable(location: str) -> Iterator[None]:
    """Turn "cannot connect" into `StoreUnavailableError`; other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        if _is_connection_error(exc):
            raise StoreUnavailableError(
                f"index unavailable: cannot reach {location} ({type(exc).__name__})"
            ) from exc
        raise


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    path = Path(settings.index_dir) / CHROMA_DIR
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def is_store_error(exc: BaseException) -> bool:
    """Whether Chroma itself raised `exc` (not our code, not a `NewsbotError`)."""
    return type(exc).__module__.partition(".")[0] == "chromadb"


def _is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    text = str(exc).lower()
    return bool(
        names
        & {
            "ConnectError",
            "ConnectTimeout",
            "ConnectionError",
            "ConnectionRefusedError",
            "RemoteProtocolError",
            "ReadError",
            "ReadTimeout",
        }
        or "could not connect" in text
        or "connection refused" in text
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
