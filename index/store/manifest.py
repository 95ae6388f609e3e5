"""The manifest: what built an index, and the check that refuses opening it otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from index.errors import IndexMismatchError
from index.ingest.chunks import TITLE_TOKENS
from index.models.embeddings import vector_precision
from index.settings import Settings

INDEX_FORMAT = 1

# What a manifest written before a key existed meant by its absence.
MANIFEST_DEFAULTS: dict[str, Any] = {"precision": "float32"}


def manifest_for(settings: Settings, model_name: str) -> dict[str, Any]:
    """The settings an index depends on: opening it with others is refused.

    The backend counts through the vectors it makes: torch and onnx agree, onnx-int8 differs.
    """
    return {
        "format": INDEX_FORMAT,
        "model": model_name,
        "precision": vector_precision(settings.embed_backend),
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "title_tokens": TITLE_TOKENS,
    }


def check_manifest(recorded: dict[str, Any] | None, wanted: dict[str, Any], where: Path) -> None:
    """Raise `IndexMismatchError` naming the keys of `wanted` that `recorded` has otherwise.

    Only `wanted`'s keys count: what `recorded` adds (the dimension) follows from them.
    """
    if recorded is None:
        return
    diffs = [
        f"{key} {recorded.get(key, MANIFEST_DEFAULTS.get(key))!r} (settings say {value!r})"
        for key, value in wanted.items()
        if recorded.get(key, MANIFEST_DEFAULTS.get(key)) != value
    ]
    if diffs:
        raise IndexMismatchError(
            f"the index in {where} was built with {', '.join(diffs)}: "
            "run `newsbot index --rebuild` to rebuild it with the current settings"
        )
