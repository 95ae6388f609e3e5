"""The real, bundled all-MiniLM-L6-v2 on the shipped seed article (slow: loads torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.ingest.chunks import Chunker
from index.models.embeddings import load_embedder
from index.settings import Settings
from tests.conftest import SEED_ID, copy_seed

pytestmark = pytest.mark.integration
runner = CliRunner()
DEMO_QUESTION = "What has Biden allowed Ukraine to do?"  # the Makefile's demo asks it


@pytest.fixture
def seed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    corpus = copy_seed(tmp_path / "corpus")
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(tmp_path / "index"))
    return corpus


@pytest.mark.xfail(
    strict=True,
    reason="issue 28, open: the answer model reading with the reader quotes the sentence "
    "holding $56.2 billion, but hedges (confidence 0.21, an answer needs 0.667): short "
    "questions about a small corpus get low confidence; see docs/reader.md",
)
def test_seed_question_is_answered_with_the_figure_and_its_source(seed_env: Path) -> None:
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output

    result = runner.invoke(app, ["ask", "How much aid has the US sent?", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["found"] is True
    assert "$56.2 billion" in data["answer"]
    assert "[1]" in data["answer"]
    first = data["citations"][0]
    assert first["article_id"] == SEED_ID
    assert first["source"] == "BusinessDay"
    assert "$56.2 billion" in first["passage"]
    start, end = first["highlight"]
    assert "$56.2 billion" in first["passage"][start:end]


def test_question_the_article_does_not_cover_gets_no_citation(seed_env: Path) -> None:
    runner.invoke(app, ["index"])

    result = runner.invoke(app, ["ask", "Who won the 2022 World Cup?", "--json"])

    data = json.loads(result.stdout)
    assert data["found"] is False
    assert data["citations"] == []
    assert "don't cover" in data["answer"]


def test_human_readable_answer(seed_env: Path) -> None:
    runner.invoke(app, ["index"])

    result = runner.invoke(app, ["ask", DEMO_QUESTION])

    assert result.exit_code == 0
    # A hedge (confidence 0.62, under 2/3: docs/reader.md) quoting the sentence that answers.
    assert " ".join(result.stdout.split()).startswith(  # as the terminal wraps it
        "The articles don't say for sure. The closest they come: “President Biden has decided "
        "to let Ukraine use"
    )
    assert "[1] Biden lets Ukraine strike deeper" in result.stdout


def test_real_chunks_never_exceed_the_model_window(tmp_path: Path) -> None:
    settings = Settings(embed_backend="torch")  # sentence-transformers' own tokenizer
    embedder = load_embedder(settings)
    chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
    from index.ingest.corpus.article import make_article

    body = " ".join(
        f"In 2024 the Ministry of Infrastructure's spokesperson, Dr. Oluwaseun Adebayo-Okonkwo, "
        f"announced procurement tranche {i} worth ₦{i * 37},000,000.50 (about ${i * 23}k)."
        for i in range(120)
    )
    article = make_article("long", {"title": "A very long headline " * 20}, body, path="long")

    chunks = chunker.split(article)

    assert len(chunks) > 5
    tokenizer = embedder.model.tokenizer  # type: ignore[attr-defined]
    for chunk in chunks:
        ids = tokenizer(chunker.embed_text(article.title, chunk))["input_ids"]
        assert len(ids) <= embedder.max_tokens == 256
