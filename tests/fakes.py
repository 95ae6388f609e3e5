"""A deterministic fake embedding: hashed bag of words, so similar texts get similar vectors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """Implements `index.models.embeddings.Embedder` without a model, and counts its calls."""

    max_tokens = 256

    def __init__(self, dimension: int = 384, name: str = "fake:384") -> None:
        self.name = name
        self._dimension = dimension
        self.calls = 0
        self.texts_embedded = 0
        self.query_calls = 0

    @property
    def dimension(self) -> int:
        return self._dimension

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.md5(word.encode()).digest()
            vector[digest[0] % self._dimension] += 1.0 if digest[1] % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            vector[0] = 1.0
            norm = 1.0
        return vector / norm

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        return (
            np.stack([self._vector(t) for t in texts])
            if texts
            else np.zeros((0, self._dimension), np.float32)
        )

    def embed_query(self, text: str) -> np.ndarray:
        self.query_calls += 1
        return self._vector(text)

    def warm_up(self) -> None:
        pass


class Killed(Exception):
    """Stands for the process dying mid-reindex."""


class DiesAfter(FakeEmbedder):
    """Embeds `calls` batches, then "dies"."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.left == 0:
            raise Killed
        self.left -= 1
        return super().embed(texts)
