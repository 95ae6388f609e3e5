"""EMBED_BACKEND: the ONNX export of the bundled model, its vectors, what the index remembers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index.build.reindex import reindex
from index.errors import IndexMismatchError
from index.models import onnx_export
from index.models.embeddings import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_path,
    load_embedder,
)
from index.models.onnx_export import export_onnx
from index.newsbot import Newsbot
from index.settings import BUNDLED_MODEL, Settings
from index.store.catalog import Catalog
from tests.conftest import live
from tests.fakes import FakeEmbedder

SENTENCES = [
    "The United States has sent $56.2 billion in military aid to Ukraine since 2022.",
    "Kenyan runner Ruth Chepngetich won the Chicago Marathon in a world record time.",
    "A bright comet was visible to the naked eye across the northern hemisphere.",
    "How much aid has the US sent?",
    "short",
]


def real(backend: str) -> Settings:
    """The bundled model on `backend`, with the session's shared export cache."""
    return Settings(embed_model=BUNDLED_MODEL, embed_backend=backend)  # type: ignore[arg-type]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_the_backend_setting_picks_the_runtime(tmp_path: Path) -> None:
    torch_embedder = load_embedder(real("torch"))
    onnx = load_embedder(real("onnx"))
    int8 = load_embedder(real("onnx-int8"), purpose="query")

    assert isinstance(torch_embedder, SentenceTransformerEmbedder)
    assert isinstance(onnx, OnnxEmbedder) and not onnx._quantized
    assert isinstance(int8, OnnxEmbedder) and int8._quantized and int8._threads == 1
    assert Settings().embed_backend == "onnx"


def test_the_cache_defaults_to_the_index_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBED_CACHE_DIR")
    settings = Settings(index_dir=Path("somewhere"))

    assert settings.model_cache_dir() == Path("somewhere") / "models"
    assert Settings(embed_cache_dir=Path("c")).model_cache_dir() == Path("c")


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_vectors_match_torch(backend: str) -> None:
    expected = load_embedder(real("torch")).embed(SENTENCES)
    embedder = load_embedder(real(backend))

    vectors = embedder.embed(SENTENCES)
    one = embedder.embed_query(SENTENCES[0])

    assert vectors.shape == (len(SENTENCES), 384) == (len(SENTENCES), embedder.dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    agreement = cosines(vectors, expected)
    if backend == "onnx":
        assert agreement.min() > 0.9999
        assert float(one @ vectors[0]) > 0.9999  # alone or in a padded batch: the same
    else:
        # 8-bit weights move the vectors a little, a lone word the most (~0.98); activations
        # are quantized per batch, so a text's vector also depends a little on its batch.
        assert agreement[:4].min() > 0.99 and agreement.min() > 0.98
        assert float(one @ vectors[0]) > 0.99


@pytest.mark.integration
def test_onnx_export_is_offline_cached_and_tokenizes_as_sentence_transformers() -> None:
    torch_embedder = load_embedder(real("torch"))
    assert isinstance(torch_embedder, SentenceTransformerEmbedder)
    embedder = load_embedder(real("onnx-int8"))
    assert isinstance(embedder, OnnxEmbedder)
    long_text = " ".join(SENTENCES * 40)  # well past the 256-piece window

    embedder.warm_up()  # the conftest forbids the network: this is the bundled weights

    folder = embedder.exported()
    assert folder.parent == Settings().model_cache_dir()
    assert folder.name.startswith(f"{BUNDLED_MODEL}-") and folder.name.endswith("-int8")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.onnx", "tokenizer.json"]
    assert embedder.max_tokens == torch_embedder.max_tokens == 256
    assert embedder.count_tokens(long_text) == torch_embedder.count_tokens(long_text)
    st_ids = torch_embedder.model.tokenize([long_text])["input_ids"][0].tolist()
    ours = embedder._fast_tokenizer().encode(long_text).ids
    assert st_ids == [*ours[:255], ours[-1]]
    # Found again, not exported again.
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    again = export_onnx(
        str(bundled_model_path()), folder.parent, quantized=True, label=BUNDLED_MODEL
    )
    assert again == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp


def test_concurrent_exports_export_once_and_never_show_half_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def slow_export(location: str, work: Path, *, quantized: bool) -> None:
        calls.append(work)
        (work / "model.onnx").write_text("model")
        time.sleep(0.2)  # a reader looking now must not take this folder for a model
        (work / "meta.json").write_text("{}")

    monkeypatch.setattr(onnx_export, "_export", slow_export)
    results: list[Path] = []

    def export() -> None:
        results.append(export_onnx("some/model", tmp_path / "cache", quantized=True))

    threads = [threading.Thread(target=export) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert len(set(results)) == 1 and (results[0] / "meta.json").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == [
        results[0].name
    ]


def test_a_failed_export_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(location: str, work: Path, *, quantized: bool) -> None:
        (work / "model.onnx").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnx_export, "_export", broken)

    with pytest.raises(RuntimeError):
        export_onnx("some/model", tmp_path / "cache", quantized=False)

    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".export.lock"]


def test_changing_to_or_from_int8_is_refused_until_rebuild(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    int8 = settings.overridden(embed_backend="onnx-int8")
    reindex(int8, fake_embedder)

    for backend in ("torch", "onnx"):
        with pytest.raises(IndexMismatchError, match="newsbot index --rebuild") as caught:
            reindex(settings.overridden(embed_backend=backend), fake_embedder)
        assert "precision 'int8' (settings say 'float32')" in str(caught.value)
        with pytest.raises(IndexMismatchError, match="newsbot index --rebuild"):
            Newsbot(settings.overridden(embed_backend=backend), fake_embedder)

    reindex(settings.overridden(embed_backend="torch"), fake_embedder, rebuild=True)
    # torch and onnx make the same vectors: switching between them needs no rebuild.
    reindex(settings.overridden(embed_backend="onnx"), fake_embedder)
    Newsbot(settings.overridden(embed_backend="onnx"), fake_embedder).close()


def test_an_index_from_before_the_setting_counts_as_torch(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    torch_settings = settings.overridden(embed_backend="torch")
    reindex(torch_settings, fake_embedder)
    catalog = Catalog(live(settings).catalog)  # written in place, as an old index was
    manifest = catalog.get_meta("manifest")
    del manifest["precision"]
    catalog.set_meta("manifest", manifest)
    catalog.close()

    reindex(torch_settings, fake_embedder)
    with pytest.raises(IndexMismatchError, match="precision 'float32' \\(settings say 'int8'\\)"):
        reindex(settings.overridden(embed_backend="onnx-int8"), fake_embedder)
