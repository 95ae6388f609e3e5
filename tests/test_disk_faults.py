"""A disk that fills up, or may not be written, during `newsbot index` or the model export.

Each failed write is one line naming the problem and the path, exit status 1; the index in
service keeps answering; the half-built generation keeps only its catalog (what was
embedded), and the run after the fix resumes from it with no model call for that.

The faults are real where the sandbox allows (a small tmpfs, a read-only bind mount; skipped
with the reason otherwise) and injected (`OSError(ENOSPC)` in each layer that writes) always.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chromadb.errors import InternalError
from typer.testing import CliRunner

from index.build import generation as generation_build
from index.build import reindex as indexer
from index.cli.app import app
from index.models import onnx_export
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.layout import IndexLayout
from index.store.lexical import LexicalIndex
from index.store.vectors import VectorStore
from tests.conftest import parts
from tests.fakes import FakeEmbedder

runner = CliRunner()
FILLER = "The budget for the road, the school and the river was approved after a long debate."


def town(i: int) -> str:
    """Article `i`'s town: a word no other article has."""
    return "zel" + "".join("bcdfghjklm"[int(d)] for d in str(i)) + "ton"


def write_articles(corpus: Path, numbers: range) -> None:
    for i in numbers:
        (corpus / f"n{i:04d}.md").write_text(
            f"---\ntitle: Council of {town(i)}\n---\n"
            f"The council of {town(i)} approved {100 + i} million dollars for its harbour. "
            f"{FILLER}\n"
        )


def chunks_in(catalog_path: Path) -> int:
    catalog = Catalog(catalog_path, writable=False)
    try:
        return catalog.counts()[1]
    finally:
        catalog.close()


def one_error_line(result: Any) -> str:
    """The run's only line on stderr, which must be an error."""
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, AssertionError), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


def answers_from(town_name: str, article_id: str) -> None:
    """`newsbot ask` cites `article_id` for the question `town_name`."""
    result = runner.invoke(app, ["ask", "--json", town_name])
    assert result.exit_code == 0, result.output
    cited = [c["article_id"] for c in json.loads(result.stdout)["citations"]]
    assert article_id in cited, cited


def index_state(index_dir: Path) -> tuple[int, bytes]:
    """The generation in service and its catalog's bytes: unchanged means untouched."""
    live = IndexLayout(index_dir).current()
    assert live is not None
    return live.number, live.catalog.read_bytes()


# --- the sandbox's mounts ---------------------------------------------------------------------


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {' '.join(args)} failed")


@contextmanager
def mounted(*args: str, at: Path) -> Iterator[Path]:
    """`mount ARGS… at`, unmounted afterwards; the test is skipped where mounting is refused."""
    at.mkdir(parents=True, exist_ok=True)
    try:
        _mount(*args, str(at))
    except (OSError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount here (not root, or no mount permission): {exc}")
    try:
        yield at
    finally:
        if subprocess.run(["umount", str(at)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(at)], capture_output=True)


# --- a real full disk -------------------------------------------------------------------------

BASE_ARTICLES = 20
MORE_ARTICLES = 3000  # some 3,000 chunks: ~5 MB of catalog and more of vectors, on 4 MB


def test_a_disk_that_fills_mid_reindex_keeps_the_index_and_the_run_resumes(
    env: Path, corpus: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generation_build, "GROUP_CHUNKS", 256)
    with mounted("-t", "tmpfs", "-o", "size=4m", "tmpfs", at=env):
        write_articles(corpus, range(BASE_ARTICLES))
        assert runner.invoke(app, ["index"]).exit_code == 0
        before = index_state(env)
        write_articles(corpus, range(BASE_ARTICLES, BASE_ARTICLES + MORE_ARTICLES))

        line = one_error_line(runner.invoke(app, ["index"]))

        building = IndexLayout(env).building
        assert line.startswith(f"error: out of disk space writing {env}/building"), line
        assert "free some space, then run `newsbot index` again" in line
        assert f"what was embedded is kept in {building}" in line
        assert index_state(env) == before
        assert sorted(p.name for p in building.iterdir()) <= [
            "catalog.sqlite",
            "catalog.sqlite-shm",
            "catalog.sqlite-wal",
        ]
        answers_from(town(3), "n0003.md")  # from the generation in service, disk still full
        kept = chunks_in(building / "catalog.sqlite")
        base_chunks = chunks_in(IndexLayout(env).current().catalog)  # type: ignore[union-attr]
        assert kept > base_chunks, "the disk filled before anything was embedded"

        _mount("-o", "remount,size=256m", str(env))  # space freed
        fake_embedder.texts_embedded = 0
        result = runner.invoke(app, ["index"])

        assert result.exit_code == 0, result.output
        total = chunks_in(IndexLayout(env).current().catalog)  # type: ignore[union-attr]
        assert total == base_chunks + MORE_ARTICLES  # one chunk an article
        assert fake_embedder.texts_embedded == total - kept  # no model call for what was kept
        assert not building.exists()
        settings = Settings(corpus_dir=corpus, index_dir=env, embed_model=fake_embedder.name)
        vectors, bm25, catalog = parts(settings)
        assert vectors == bm25 == catalog
        answers_from(town(BASE_ARTICLES + 7), f"n{BASE_ARTICLES + 7:04d}.md")


# --- the same, injected in each layer that writes -----------------------------------------------


def no_space(path: Path | str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def sqlite_full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = 13  # SQLITE_FULL
    return exc


def fail_on_call(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, nth: int, error: Callable[[], Exception]
) -> None:
    """Make `owner.name` raise `error()` on its `nth` call and after (a disk that stays full)."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] >= nth:
            raise error()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


# Where the disk fills: the layer, its method, which call fails, and what the line names.
LAYERS = {
    "embedding (catalog write of the 3rd group)": (
        Catalog,
        "replace_articles",
        3,
        lambda: sqlite_full(),
        "building/catalog.sqlite",
    ),
    "embedding (OSError in the 2nd group's catalog write)": (
        Catalog,
        "replace_articles",
        2,
        lambda: no_space("/idx/building/catalog.sqlite-wal"),
        "/idx/building/catalog.sqlite-wal",
    ),
    "vector store": (
        VectorStore,
        "upsert",
        1,
        lambda: no_space("/idx/building/chroma/data_level0.bin"),
        "/idx/building/chroma/data_level0.bin",
    ),
    "BM25 save": (
        LexicalIndex,
        "save",
        1,
        lambda: no_space("/idx/building/bm25.tmp/vocab.index.json"),
        "/idx/building/bm25.tmp/vocab.index.json",
    ),
    "catalog seal": (Catalog, "seal", 1, lambda: sqlite_full(), "building/catalog.sqlite"),
    "switch": (
        IndexLayout,
        "switch_to",
        1,
        lambda: no_space("/idx/CURRENT.tmp"),
        "/idx/CURRENT.tmp",
    ),
}


@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS.keys())
def test_no_space_in_a_write_is_one_line_and_the_next_run_resumes(
    env: Path,
    corpus: Path,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    layer: tuple[Any, str, int, Callable[[], Exception], str],
) -> None:
    owner, name, nth, error, named = layer
    monkeypatch.setattr(generation_build, "GROUP_CHUNKS", 8)
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = index_state(env)
    write_articles(corpus, range(40))  # five groups of eight chunks
    with monkeypatch.context() as full:
        fail_on_call(full, owner, name, nth, error)
        fake_embedder.texts_embedded = 0

        line = one_error_line(runner.invoke(app, ["index"]))

    building = IndexLayout(env).building
    assert line.startswith("error: out of disk space writing "), line
    assert named in line
    assert "free some space, then run `newsbot index` again (it resumes" in line
    assert "the index in service is unchanged" in line
    assert index_state(env) == before
    answers_from("How much military aid has the United States sent to Ukraine?", "aid.md")
    assert sorted(p.name for p in building.iterdir())[:1] == ["catalog.sqlite"]
    assert not (building / "chroma").exists() and not (building / "bm25").exists()
    embedded_before = fake_embedder.texts_embedded
    kept = chunks_in(building / "catalog.sqlite") - chunks_in(before_catalog(env))

    fake_embedder.texts_embedded = 0
    result = runner.invoke(app, ["index"])

    assert result.exit_code == 0, result.output
    assert kept > 0
    assert fake_embedder.texts_embedded == 40 - kept  # no model call for what was kept
    assert embedded_before >= kept
    assert not building.exists()
    answers_from(town(12), "n0012.md")


def before_catalog(index_dir: Path) -> Path:
    live = IndexLayout(index_dir).current()
    assert live is not None
    return live.catalog


def test_a_full_disk_before_anything_is_embedded_removes_the_build(
    env: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    write_articles(corpus, range(5))

    def start_from(self: Catalog, base: Catalog) -> None:
        raise sqlite_full()  # its first write: the segments it shares

    monkeypatch.setattr(Catalog, "start_from", start_from)

    line = one_error_line(runner.invoke(app, ["index"]))

    assert line.startswith(f"error: out of disk space writing {env}/building/catalog.sqlite"), line
    assert "nothing had been embedded yet: the unfinished build was removed" in line
    assert not IndexLayout(env).building.exists()


def test_a_full_disk_with_nothing_to_index_changes_nothing_and_succeeds(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = index_state(env)

    def opening(*args: Any, **kwargs: Any) -> VectorStore:
        # What the embedded Chroma raises when it cannot write to its folder as it opens.
        raise InternalError("error returned from database: (code: 13) database or disk is full")

    monkeypatch.setattr(indexer, "VectorStore", opening)

    result = runner.invoke(app, ["index"])

    # Nothing changed: no store is opened (the embedded one writes whatever it opens).
    assert result.exit_code == 0, result.output
    assert index_state(env) == before


# --- the model export -------------------------------------------------------------------------


def test_no_space_for_the_model_export_is_one_line_and_leaves_nothing_half_written(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "models"
    monkeypatch.setenv("EMBED_MODEL", "all-MiniLM-L6-v2")  # the bundled model, ONNX backend
    monkeypatch.setenv("EMBED_CACHE_DIR", str(cache))

    def export(location: str, work: Path, *, quantized: bool) -> None:
        (work / "raw.onnx").write_bytes(b"\0" * 1000)
        raise no_space(work / "raw.onnx")

    monkeypatch.setattr(onnx_export, "_export", export)

    line = one_error_line(runner.invoke(app, ["index"]))

    folders = [p for p in cache.iterdir() if p.is_dir()]
    assert folders == [], "a half-written export was left"
    assert line.startswith(f"error: out of disk space writing {cache}/all-MiniLM-L6-v2-"), line
    assert "set EMBED_CACHE_DIR" not in line  # that is for permissions
    assert line.endswith(
        "free some space, then run the command again (the half-written export was removed)"
    )


def test_a_model_cache_it_may_not_write_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "models"
    monkeypatch.setenv("EMBED_MODEL", "all-MiniLM-L6-v2")
    monkeypatch.setenv("EMBED_CACHE_DIR", str(cache))
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == cache:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)

    line = one_error_line(runner.invoke(app, ["index"]))

    assert line.startswith(f"error: no permission to write {cache}/all-MiniLM-L6-v2-"), line
    assert "set EMBED_CACHE_DIR to another folder" in line


# --- an index folder it may not write ---------------------------------------------------------


def test_an_index_folder_it_may_not_write_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == env:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)

    line = one_error_line(runner.invoke(app, ["index"]))

    assert line == (
        f"error: no permission to write {env}: let this user write there (or set "
        "NEWSBOT_INDEX_DIR to another folder), then run `newsbot index` again"
    )


def test_a_read_only_index_folder_is_one_line_and_changes_nothing(
    env: Path, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = index_state(env)
    (tmp_path / "corpus" / "new.md").write_text("A new article about the harbour.\n")
    with mounted("--bind", str(env), at=env):
        _mount("-o", "remount,ro,bind", str(env))

        line = one_error_line(runner.invoke(app, ["index"]))

        assert index_state(env) == before

        assert line.startswith(f"error: cannot write {env}/writer.lock: read-only file system"), (
            line
        )
        assert line.endswith(
            "set NEWSBOT_INDEX_DIR to a folder on a writable disk, then run `newsbot index` again"
        )
