"""The vectors a catalog keeps with its chunks: the truth its vector store is written from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from index.store.catalog.schema import Tables, batches, blob, rollback


class VectorTables(Tables):
    """Each chunk's vector, as a float32 blob."""

    def set_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors for existing chunks (when an index from before is carried over)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "UPDATE main.chunks SET vector = ? WHERE id = ?",
                [(blob(v), cid) for cid, v in vectors.items()],
            )
            self._db.execute("COMMIT")
        except BaseException:
            rollback(self._db)
            raise

    def dimension(self) -> int | None:
        """The length of the vectors kept (None with none)."""
        for part in self._parts:
            row = self._db.execute(
                f"SELECT length(vector) FROM {part.schema}.chunks WHERE vector IS NOT NULL LIMIT 1"
            ).fetchone()
            if row is not None:
                return int(row[0]) // 4
        return None

    def articles_missing_vectors(self) -> set[str]:
        """Articles of this catalog's own tables with a chunk that has no vector (an index
        from before vectors were kept in the catalog, copied in). A sealed segment has every
        vector (its chunks were embedded, or copied with theirs), so it is not read: that
        would mean reading every chunk of the index."""
        rows = self._db.execute("SELECT DISTINCT article_id FROM main.chunks WHERE vector IS NULL")
        return {r[0] for r in rows}

    def iter_vectors(
        self, batch: int, article_ids: Iterable[str] | None = None
    ) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        """(chunk ids, vectors, store metadata) of every chunk with a vector in this
        catalog's own segment (of the given articles only, if any are given), `batch` at a
        time."""
        query = (
            "SELECT c.id, c.vector, c.article_id, c.ord, a.source, a.published "
            "FROM main.chunks c JOIN main.articles a ON a.id = c.article_id "
            "WHERE c.vector IS NOT NULL"
        )
        if article_ids is None:
            chosen: Iterator[list[str]] = iter([[]])
        else:
            chosen = batches(sorted(article_ids), 500)
        for some in chosen:
            if article_ids is None:
                rows = self._db.execute(query + " ORDER BY c.id")
            else:
                marks = ",".join("?" * len(some))
                rows = self._db.execute(f"{query} AND c.article_id IN ({marks})", some)
            while got := rows.fetchmany(batch):
                ids = [r[0] for r in got]
                vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in got])
                metas = [store_meta(r[2], r[3], r[4], r[5]) for r in got]
                yield ids, vectors, metas


def store_meta(
    article_id: str, ord_: int, source: str | None, published: str | None
) -> dict[str, Any]:
    """What the vector store keeps beside each vector."""
    meta: dict[str, Any] = {"article_id": article_id, "ord": ord_}
    if source:
        meta["source"] = source
    if published:
        meta["published"] = published
    return meta
