"""The vector store: Chroma, embedded under the index folder or a Chroma server."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexMismatchError, StoreUnavailableError, VectorsMissingError
from index.settings import Settings

# Collection metadata key naming the index (catalog) that owns the collection's vectors.
OWNER_KEY = "newsbot_index"
# The embedded store's own database file, in its folder.
CHROMA_SQLITE = "chroma.sqlite3"
# Chroma rejects larger requests; stay well under its max batch size.
WRITE_BATCH = 1000
# A reader's private copy of the embedded store (`_private_copy`): a folder in the temp folder
# named so, holding a lock file its reader keeps locked while it has the copy open.
COPY_PREFIX = "newsbot-chroma-"
COPY_LOCK = ".newsbot-reader.lock"
# What to do when a reader cannot copy the embedded store (`_private_copy`), by errno.
COPY_HINTS = {
    errno.ENOSPC: ": free space there, or set TMPDIR to a folder with room",
    errno.EDQUOT: ": free space there, or set TMPDIR to a folder with room",
    errno.EROFS: ": set TMPDIR to a folder you may write",
    errno.EACCES: ": set TMPDIR to a folder you may write",
    errno.EPERM: ": set TMPDIR to a folder you may write",
}


class VectorStore:
    """Chunk vectors by chunk id, with cosine distance: one segment's collection.

    The embedded store keeps each segment's collection in the segment's folder; a Chroma
    server holds one collection per segment, named for the index and the segment. Each
    collection is marked with the id of the index that owns it, so that no index ever opens
    or deletes another's vectors on a shared server.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        owner: str,
        path: Path,
        name: str,
        fresh: bool = False,
        read_only: bool = False,
    ) -> None:
        """Open the collection `name` (at `path` when embedded).

        `fresh`: create it empty, deleting what a killed build of the same generation left;
        else it must exist (`StoreUnavailableError` if it does not).
        `read_only`: write nothing under `path`, as readers of a complete generation do: the
        embedded store is opened from a copy private to this process (see `_private_copy`).
        """
        self.settings = settings
        self.owner = owner
        self.name = name
        self.location = _location(settings, path)
        self._scratch: weakref.finalize[Any, Any] | None = None
        if read_only and not settings.chroma_host:
            copy, lock = _private_copy(path)
            # Removed by `close`, or when this store is collected, or at exit at the latest;
            # if the process is killed first, by the next reader (`_sweep_copies`).
            self._scratch = weakref.finalize(self, _remove_copy, copy, lock)
            path = copy
        self._client: Any = None
        try:
            self._connect(path, fresh)
        except BaseException:
            self.close()
            raise

    def _connect(self, path: Path, fresh: bool) -> None:
        settings, name, owner = self.settings, self.name, self.owner
        with _unavailable(self.location):
            self._client = _client(settings, path)
            if fresh:
                _delete_owned(self._client, name, owner)
                self._collection = self._client.create_collection(
                    name,
                    embedding_function=None,  # vectors come from our model; never a download
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={OWNER_KEY: owner},
                )
                return
            try:
                self._collection = self._client.get_collection(name, embedding_function=None)
            except Exception as exc:
                if type(exc).__name__ != "NotFoundError":
                    raise
                raise VectorsMissingError(
                    f"index unavailable: the collection {name!r} is missing from "
                    f"{self.location}: run `newsbot index` to restore it"
                ) from exc
            self._check_owner()

    def _check_owner(self) -> None:
        owner = (self._collection.metadata or {}).get(OWNER_KEY)
        if owner != self.owner:
            raise IndexMismatchError(
                f"the Chroma collection {self.name!r} at {self.location} belongs to another "
                f"newsbot index, not to {self.settings.index_dir}"
            )

    @staticmethod
    def remove_other_generations(settings: Settings, owner: str, keep: set[str]) -> None:
        """On a server: delete the collections of index `owner`'s generations not in `keep`.

        That includes the collection of an index from before generations (named
        `CHROMA_COLLECTION` itself) unless kept. The embedded store's collections go with
        their generation folders.
        """
        if not settings.chroma_host:
            return
        prefix = generation_prefix(settings, owner)
        with _unavailable(_location(settings, settings.index_dir)):
            client = _client(settings, settings.index_dir)
            for collection in client.list_collections():
                name = collection.name
                ours = name == settings.chroma_collection or (
                    name.startswith(prefix) and name[len(prefix) :].isdigit()
                )
                if ours and name not in keep:
                    _delete_owned(client, name, owner)

    def close(self) -> None:
        """Release the client (and a reader's private copy). The embedded store shares one
        client per folder in a process: a generation's folder is renamed or deleted only once
        all of them are closed."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
        if self._scratch is not None:
            self._scratch()

    def count(self) -> int:
        with _unavailable(self.location):
            return int(self._collection.count())

    def load(self, dimension: int | None) -> None:
        """Load the vectors now rather than on the first question.

        The embedded store reads its files and replays its write log on first use.
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

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Chunk id → vector, for the ids the store holds."""
        out: dict[str, np.ndarray] = {}
        with _unavailable(self.location):
            for i in range(0, len(ids), WRITE_BATCH):
                got = self._collection.get(
                    ids=list(ids[i : i + WRITE_BATCH]), include=["embeddings"]
                )
                for cid, vector in zip(got["ids"], got["embeddings"], strict=True):
                    out[cid] = np.asarray(vector, dtype=np.float32)
        return out


def collection_name(settings: Settings, owner: str, number: int) -> str:
    """The collection of generation `number` (0: an index from before generations)."""
    if number == 0 or not settings.chroma_host:
        return settings.chroma_collection
    return f"{generation_prefix(settings, owner)}{number:06d}"


def generation_prefix(settings: Settings, owner: str) -> str:
    return f"{settings.chroma_collection}-{owner[:8]}-"


def _delete_owned(client: Any, name: str, owner: str) -> None:
    """Delete collection `name` if index `owner` owns it."""
    try:
        collection = client.get_collection(name)
    except Exception as exc:
        if _is_connection_error(exc):
            raise
        return  # no such collection
    if (collection.metadata or {}).get(OWNER_KEY) == owner:
        client.delete_collection(name)


def _location(settings: Settings, path: Path) -> str:
    if settings.chroma_host:
        return f"chroma server {settings.chroma_host}:{settings.chroma_port}"
    return str(path)


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


def _client(settings: Settings, path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _private_copy(folder: Path) -> tuple[Path, int]:
    """A copy of the embedded store `folder` that only this process opens, in the temp folder.

    Chroma cannot open a store without writing to it: every start of its embedded client
    inserts a row into `chroma.sqlite3` (its `acquire_write` table, in a write transaction
    with a journal file beside it), and loading a collection whose last vectors are still in
    its write log rewrites the collection's HNSW files (it flushes them only every
    `sync_threshold` vectors written, so the last ones nearly always are). Its settings offer
    no read-only mode. A reader opening a generation in place would thus write a generation
    that is never to change (while other processes read those HNSW files), and fail on a
    read-only folder or a full disk. A reader therefore opens a copy, which Chroma may write
    as it likes: the generation is only read.

    The copy costs the store's size in the temp folder (`TMPDIR`) while the reader has the
    generation open, and a moment to make; the files are copied, never linked, so no write
    can reach the generation. A Chroma server needs none of this: readers write nothing here.

    The copy holds a lock file that its reader keeps locked (`flock`) while it has the copy
    open; the lock goes with the process, however it ends. Each new copy first removes the
    copies no process holds any more: those of readers that were killed.

    Returns:
        The copy's folder, and the open descriptor holding its lock (`_remove_copy` closes it).

    Raises:
        VectorsMissingError: `folder` is not there.
        StoreUnavailableError: the copy cannot be made (say, the temp folder is full).
    """
    if not folder.is_dir():
        raise VectorsMissingError(
            f"index unavailable: the vector store {folder} is missing: "
            "run `newsbot index` to restore it"
        )
    _sweep_copies(Path(tempfile.gettempdir()))
    try:
        scratch = Path(tempfile.mkdtemp(prefix=COPY_PREFIX))
    except OSError as exc:
        raise _copy_failed(folder, exc) from exc
    lock = -1
    try:
        lock = _hold_lock(scratch)
        for parent, folders, files in os.walk(folder):
            here = scratch / Path(parent).relative_to(folder)
            for name in folders:
                (here / name).mkdir()
            for name in files:
                # Contents only: a read-only index's modes must not make the copy read-only.
                shutil.copyfile(Path(parent) / name, here / name)
    except OSError as exc:
        _remove_copy(scratch, lock)
        raise _copy_failed(folder, exc) from exc
    except BaseException:
        _remove_copy(scratch, lock)
        raise
    return scratch, lock


def _hold_lock(scratch: Path) -> int:
    """Lock a new lock file in `scratch`, made under another name and renamed once locked, so
    that no sweeping reader ever finds it unlocked while this one lives."""
    making = scratch / f"{COPY_LOCK}.new"
    lock = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(making, scratch / COPY_LOCK)
    except BaseException:
        os.close(lock)
        raise
    return lock


def _remove_copy(scratch: Path, lock: int) -> None:
    """Delete a reader's copy, then let go of its lock."""
    shutil.rmtree(scratch, ignore_errors=True)
    if lock >= 0:
        os.close(lock)


def _sweep_copies(temp: Path) -> None:
    """Delete the copies in `temp` that no reader holds: their lock file is there and
    unlocked (a copy without one is being made, or is not ours). Best effort: a copy that
    cannot be examined or deleted is left."""
    try:
        copies = [p for p in temp.iterdir() if p.name.startswith(COPY_PREFIX)]
    except OSError:
        return
    for copy in copies:
        try:
            lock = os.open(copy / COPY_LOCK, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)  # a live reader's
            continue
        _remove_copy(copy, lock)


def _copy_failed(folder: Path, exc: OSError) -> StoreUnavailableError:
    hint = COPY_HINTS.get(exc.errno or 0, "")
    return StoreUnavailableError(
        f"index unavailable: cannot copy the vectors of {folder} into the temp folder "
        f"{tempfile.gettempdir()}, where readers open them ({exc.strerror or exc}){hint}"
    )


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
