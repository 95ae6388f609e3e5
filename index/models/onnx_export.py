"""The ONNX export of a sentence-transformers model: the transformer and its mean pooling as
one ONNX graph (fused for onnxruntime, optionally with 8-bit weights), with the model's
tokenizer, made locally from the same weights torch reads and cached by their content.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.disk import writing
from index.errors import ConfigError, ModelLoadError

# Bump when the export or the quantization changes: it is part of the cached model's name.
ONNX_RECIPE = 1
ONNX_OPSET = 17
EXPORT_AGAIN = "run the command again (the half-written export was removed)"
WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


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
