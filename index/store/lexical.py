"""The BM25 side of retrieval (bm25s), saved beside the vectors and rebuilt with them."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.store.terms import Tokenizer

IDS_FILE = "chunk_ids.json"
PARAMS_FILE = "params.index.json"  # bm25s's; absent when no chunk had a term


class LexicalIndex:
    """BM25 over chunk texts; `search` answers with chunk ids."""

    def __init__(self, retriever: object | None, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self._tokenize = Tokenizer()
        self._vocab: dict[str, int] = (
            getattr(retriever, "vocab_dict", {}) if retriever is not None else {}
        )

    @classmethod
    def build(cls, chunk_ids: list[str], texts: Sequence[str]) -> LexicalIndex:
        """Index `texts` (one per chunk id)."""
        import bm25s

        tokens = Tokenizer()(texts)
        if not any(tokens):  # no chunk has a term (a segment of one short note): none found
            return cls(None, list(chunk_ids))
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever, list(chunk_ids))

    def save(self, directory: Path) -> None:
        """Write the index to `directory`, replacing what was there only once it is complete."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(tmp), show_progress=False)  # type: ignore[attr-defined]
        (tmp / IDS_FILE).write_text(json.dumps(self.chunk_ids))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """The index saved in `directory`; an empty one if there is none."""
        ids_path = directory / IDS_FILE
        if not ids_path.exists():
            return cls(None, [])
        chunk_ids = json.loads(ids_path.read_text())
        if not isinstance(chunk_ids, list) or not all(isinstance(c, str) for c in chunk_ids):
            raise ValueError(f"{IDS_FILE} is not a list of chunk ids")
        if not chunk_ids:
            return cls(None, chunk_ids)
        if not (directory / PARAMS_FILE).exists():
            # bm25s wrote nothing when no chunk had a term; its other files without its
            # parameters are an index that lost them.
            if any(p.name != IDS_FILE for p in directory.iterdir()):
                raise ValueError(f"{PARAMS_FILE} is missing")
            return cls(None, chunk_ids)
        import bm25s

        retriever = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        if retriever.scores.get("num_docs") != len(chunk_ids):
            raise ValueError(f"its files disagree with {IDS_FILE}")
        return cls(retriever, chunk_ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; only chunks sharing a term."""
        if self._retriever is None or n <= 0:
            return []
        terms = [t for t in self._tokenize([query])[0] if t in self._vocab]
        if not terms:
            return []
        k = min(n, len(self.chunk_ids))
        docs, scores = self._retriever.retrieve(  # type: ignore[attr-defined]
            [terms], k=k, show_progress=False, n_threads=1
        )
        return [
            (self.chunk_ids[int(d)], float(s))
            for d, s in zip(np.asarray(docs)[0], np.asarray(scores)[0], strict=True)
            if s > 0
        ]

    # -- several segments (`index.store.segments`) ------------------------------------------------
    def terms(self, query: str) -> list[str]:
        """The query's BM25 terms."""
        return self._tokenize([query])[0]

    @property
    def size(self) -> int:
        """Chunks indexed."""
        return len(self.chunk_ids)

    def doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        """Term → the number of chunks holding it, for the given terms this index knows."""
        if self._retriever is None:
            return {}
        indptr = self._retriever.scores["indptr"]  # type: ignore[attr-defined]
        out = {}
        for term in terms:
            tid = self._vocab.get(term)
            if tid is not None:
                out[term] = int(indptr[tid + 1] - indptr[tid])
        return out

    def scored(
        self, weights: dict[str, float], n: int, dead: np.ndarray | None
    ) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, score) pairs, best first: BM25 with each term's weight in
        this index scaled by `weights` (term → factor), without the chunks at `dead`."""
        if self._retriever is None or n <= 0:
            return []
        matrix = self._retriever.scores  # type: ignore[attr-defined]
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        scores = np.zeros(matrix["num_docs"], dtype=np.float32)
        for term, weight in weights.items():
            tid = self._vocab.get(term)
            if tid is None:
                continue
            start, end = indptr[tid], indptr[tid + 1]
            np.add.at(scores, indices[start:end], data[start:end] * np.float32(weight))
        if dead is not None and len(dead):
            scores[dead] = 0.0
        k = min(n, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunk_ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]


def lucene_idf(df: int, docs: int) -> float:
    """BM25's inverse document frequency, as bm25s computes it (its default, Lucene's)."""
    return math.log(1 + (docs - df + 0.5) / (df + 0.5))
