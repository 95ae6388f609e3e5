"""Every test runs isolated: its own working folder, no newsbot env vars, no network, no hub."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from index.answer.answer_model import ANSWER_FEATURES, AnswerModel, Logistic
from index.answer.features import FEATURES
from index.env_example import env_names
from index.models.embeddings import register_embedder
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.layout import Generation, IndexLayout
from index.store.lexical import LexicalIndex
from index.store.vectors import VectorStore
from tests.fakes import FakeEmbedder
from tests.readonly import Unwritable, mounted_read_only, refusing_writes
from tests.web_server import WebServer, serving

DATA = Path(__file__).parent / "data"
# The bundled corpus: the seed article at its top, the demo articles under demo/.
BUNDLED = Path(__file__).resolve().parent.parent / "corpus"
SEED_ID = "us-long-range-missiles-ukraine.txt"

# Property tests (tests/test_hostile_properties.py): the same examples on every run, no
# example database, no timing; `HYPOTHESIS_PROFILE=explore` searches many more, at random.
# A test's fixtures (the fake model, a built index) are shared by its examples, which each
# work in a folder of their own.
_SHARED_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    suppress_health_check=_SHARED_FIXTURES,
)
hypothesis_settings.register_profile(
    "explore", deadline=None, max_examples=2000, suppress_health_check=_SHARED_FIXTURES
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export cache for the whole session: each backend is exported once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path) -> Iterator[None]:
    """No settings leak in from the environment or a `.env`; nothing leaves the machine."""
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMBED_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.chdir(tmp_path)
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tests may not reach the network ({address!r})")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield


def hand_set(features: tuple[str, ...], intercept: float, **weights: float) -> Logistic:
    """A logistic regression with the given weights on raw (unscaled) features."""
    unknown = set(weights) - set(features)
    assert not unknown, unknown
    n = len(features)
    coef = np.array([weights.get(name, 0.0) for name in features])
    return Logistic(features, np.zeros(n), np.ones(n), coef, intercept)


# A sentence is chosen by its share of the question's terms, then by its passage's rank.
SIMPLE_SENTENCE = hand_set(FEATURES, 0.0, coverage=10.0, passage_rank=1.0)
# It answers when its score reaches 5.5: about half the question's terms.
SIMPLE_ANSWER = hand_set(ANSWER_FEATURES, -11.0, sentence_logit=2.0)


@pytest.fixture(scope="session")
def simple_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hand-set answer model for the tests of everything around the answer step.

    A fake embedder's similarities mean nothing, so the shipped reader or model (learned on
    the real model's) would judge its passages at random; and those tests should not change
    when the reader is trained again. With a fake embedder the reader is off
    (`NEWSBOT_READER=off`) and this model answers. The answer step itself is tested with the
    shipped reader (tests/test_reader_model.py, tests/test_trust.py), with a stand-in reader
    (tests/test_reader.py) and with hand-made passages (tests/test_answer.py).
    """
    path = tmp_path_factory.mktemp("answer-model") / "simple.json"
    AnswerModel(SIMPLE_SENTENCE, SIMPLE_ANSWER, 0.5, 0.5, passages=5).save(path)
    return path


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch, simple_model: Path) -> FakeEmbedder:
    """A fake embedder that `EMBED_MODEL=fake:384` resolves to (for CLI tests too), with
    the hand-set answer model (`simple_model`) in place of the reader."""
    embedder = FakeEmbedder()
    register_embedder("fake", lambda arg, settings: embedder)
    monkeypatch.setenv("EMBED_MODEL", embedder.name)
    monkeypatch.setenv("NEWSBOT_READER", "off")
    monkeypatch.setenv("NEWSBOT_ANSWER_MODEL", str(simple_model))
    return embedder


def write_article(folder: Path, name: str, text: str, **meta: str) -> Path:
    """A Markdown article with YAML front matter under `folder`."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    front = "".join(f"{k}: {v!r}\n" for k, v in meta.items())
    path.write_text(f"---\n{front}---\n{text}\n" if meta else text, encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A tiny corpus of three unrelated articles."""
    root = tmp_path / "corpus"
    write_article(
        root,
        "aid.md",
        "The United States has sent $56.2 billion in military aid to Ukraine since 2022.\n\n"
        "Officials said more help would follow in the spring.",
        title="US aid to Ukraine",
        source="Example News",
        url="https://example.com/2024/11/17/aid",
    )
    write_article(
        root,
        "sport/marathon.md",
        "Kenyan runner Ruth Chepngetich won the Chicago Marathon in a world record time.\n\n"
        "She finished in two hours, nine minutes and 56 seconds.",
        title="Chepngetich breaks marathon record",
        source="Sports Daily",
        published="2024-10-13",
    )
    write_article(
        root,
        "science/comet.txt",
        "Comet sighting delights astronomers\n\n"
        "A bright comet was visible to the naked eye across the northern hemisphere this week.",
    )
    return root


def copy_seed(folder: Path) -> Path:
    """The seed article alone (its text and its `.meta.yaml`), copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in BUNDLED.glob(SEED_ID.removesuffix(".txt") + ".*"):
        shutil.copy2(path, folder / path.name)
    return folder


@pytest.fixture
def bundled_corpus(tmp_path: Path) -> Path:
    """A copy of the bundled corpus (the seed and the demo articles), free to change."""
    return Path(shutil.copytree(BUNDLED, tmp_path / "bundled"))


@pytest.fixture
def bundled_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    bundled_corpus: Path,
    fake_embedder: FakeEmbedder,
) -> Path:
    """CLI runs on a copy of the bundled corpus and the fake model; the index folder they use."""
    index_dir = tmp_path / "bundled-idx"
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(bundled_corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(index_dir))
    return index_dir


@pytest.fixture
def settings(tmp_path: Path, corpus: Path, fake_embedder: FakeEmbedder) -> Settings:
    """Settings pointing at the tiny corpus, an index under tmp_path and the fake model."""
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model=fake_embedder.name)


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus: Path, fake_embedder: FakeEmbedder
) -> Path:
    """CLI runs on the tiny corpus and the fake model; the index folder they use."""
    index_dir = tmp_path / "idx"
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(index_dir))
    return index_dir


@pytest.fixture(params=["mounted", "refused"])
def unwritable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Unwritable:
    """Makes a folder read-only for a block: a real read-only bind mount (skipped without
    root), or every write under it refused in-process (errno EROFS)."""
    if request.param == "mounted":
        return mounted_read_only
    return lambda root: refusing_writes(root, monkeypatch, errno.EROFS)


# --- the generation in service, read as a reader does --------------------------------------


def live(settings: Settings) -> Generation:
    generation = IndexLayout(settings.index_dir).current()
    assert generation is not None, f"no index in {settings.index_dir}"
    return generation


def live_catalog(settings: Settings) -> Catalog:
    return Catalog(live(settings).catalog, writable=False)


def as_before_segments(index_dir: Path) -> Generation:
    """Lay the generation in service out as newsbot did before segments: its catalog holding
    every article, its BM25 and vectors in its own folder. It must be one segment (a first
    index). Returns it."""
    generation = IndexLayout(index_dir).current()
    assert generation is not None
    db = sqlite3.connect(generation.catalog)
    (segment,) = json.loads(
        db.execute("SELECT value FROM meta WHERE key = 'segments'").fetchone()[0]
    )
    folder = index_dir / "segments" / segment
    meta = db.execute(
        "SELECT key, value FROM meta WHERE key NOT IN ('segments', 'sealed')"
    ).fetchall()
    db.close()
    for name in ("bm25", "chroma"):
        os.replace(folder / name, generation.root / name)
    os.replace(folder / "catalog.sqlite", generation.catalog)
    shutil.rmtree(index_dir / "segments")
    db = sqlite3.connect(generation.catalog)
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
    stories = db.execute("SELECT article_id, story FROM story_map").fetchall()
    db.executemany(
        "UPDATE stories SET story = ? WHERE article_id = ?", [(b, a) for a, b in stories]
    )
    db.execute("UPDATE stories SET story = article_id WHERE story IS NULL")
    db.execute("DROP TABLE dead")
    db.execute("DROP TABLE story_map")
    db.commit()
    db.close()
    return generation


def parts(settings: Settings) -> tuple[set[str], set[str], set[str]]:
    """Chunk ids the generation in service holds in the vector store, in BM25, and in the
    catalog, over all its segments less their dead chunks (each checked to be unique)."""
    catalog = live_catalog(settings)
    try:
        in_catalog = catalog.chunk_ids()
        segments = catalog.segments()
        owner = catalog.get_meta("index_id")
    finally:
        catalog.close()
    vectors: list[str] = []
    lexical: list[str] = []
    for segment in segments:
        store = VectorStore(  # read-only, as readers do: a sealed segment is never written
            settings,
            owner=owner,
            path=segment.folder / "chroma",
            name=str(segment.collection),
            read_only=True,
        )
        try:
            ids = store.ids()
            assert store.count() == len(ids), "duplicate ids in the vector store"
        finally:
            store.close()
        assert ids == set(LexicalIndex.load(segment.folder / "bm25").chunk_ids)
        vectors += sorted(ids - segment.dead_chunks)
        lexical += [
            cid
            for cid in LexicalIndex.load(segment.folder / "bm25").chunk_ids
            if cid not in segment.dead_chunks
        ]
    assert len(set(in_catalog)) == len(in_catalog), "duplicate chunks in the catalog"
    assert len(set(lexical)) == len(lexical), "duplicate chunks in BM25"
    assert len(set(vectors)) == len(vectors), "a chunk in the vectors of two segments"
    return set(vectors), set(lexical), set(in_catalog)


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A scripted web server on 127.0.0.1 (tests/web_server.py), stopped afterwards."""
    with serving() as server:
        yield server


@pytest.fixture
def fetching(env: Path, monkeypatch: pytest.MonkeyPatch, corpus: Path) -> Path:
    """CLI runs that may fetch from the test server (127.0.0.1), with short limits; the
    corpus folder."""
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_PRIVATE", "127.0.0.1")
    monkeypatch.setenv("NEWSBOT_FETCH_TIMEOUT", "1")
    monkeypatch.setenv("NEWSBOT_FETCH_MAX_MB", "1")
    return corpus
