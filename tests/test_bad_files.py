"""`newsbot index` over bad corpus files: one line each, the rest indexed, --strict refuses."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.ingest.corpus.files import MAX_ARTICLE_BYTES
from index.store.catalog import Catalog
from index.store.layout import IndexLayout
from tests.conftest import write_article

runner = CliRunner()
IS_ROOT = os.geteuid() == 0
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def summary(stdout: str) -> dict[str, str]:
    """The rows of the summary table: label → count."""
    return {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in stdout.splitlines()
        if line.count("│") == 3
    }


def add_bad_files(corpus: Path) -> dict[str, str]:
    """One file (or folder, or line) of every bad kind; returns where → reason it must get."""
    (corpus / "photo.txt").write_bytes(PNG)
    (corpus / "noise.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blank.md").write_bytes(b" \n\t\n")
    with (corpus / "huge.txt").open("wb") as huge:
        huge.truncate(MAX_ARTICLE_BYTES + 50_000_000)  # sparse: 60 MB on paper, none on disk
    (corpus / "feed.jsonl").write_text(
        '{"id": "w1", "title": "Wind farm", "text": "A wind farm opened off the coast."}\n'
        '{"id": "w2", "title": "Solar park", "text": "A solar park opened in the des\n'
        '{"id": "w3", "title": "Dam", "text": "A dam was finished upstream."}\n'
    )
    (corpus / "broken.json").write_text('{"id": "x", "text": ')
    (corpus / "yaml.md").write_text("---\ntitle: [unclosed\n---\nBody.\n")
    (corpus / "toml.md").write_text('+++\ntitle = "unclosed\n+++\nBody.\n')
    # "Billion laughs": nine lines that would print as 10^9 copies of "lol".
    names = "abcdefghi"
    laughs = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]" for a, b in pairwise(names)
    ]
    bomb = "\n".join(laughs) + "\ntitle: *i\n"
    (corpus / "bomb.md").write_text(f"---\n{bomb}---\nBody.\n")
    (corpus / "side.md").write_text("Body.\n")
    (corpus / "side.meta.yaml").write_text(bomb)
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "loop.md").symlink_to("loop.md")
    (corpus / "dangling.md").symlink_to("nowhere.md")
    (corpus / "sport" / "up").symlink_to("..")
    expected = {
        "photo.txt": "binary file (a PNG image), not text",
        "noise.txt": "binary file (NUL bytes), not text",
        "empty.txt": "empty file",
        "blank.md": "empty file (only whitespace)",
        "huge.txt": "file too large (60.0 MB, over newsbot's 10 MB limit for an article file)",
        "feed.jsonl:2": "invalid JSON line (Unterminated string starting at)",
        "broken.json": "invalid JSON (Expecting value at line 1)",
        "yaml.md": "broken YAML front matter (while parsing a flow sequence)",
        "toml.md": "broken TOML front matter (Unterminated string (at end of document))",
        "bomb.md": "broken YAML front matter (aliases are not allowed: found *a)",
        "side.md": "unreadable metadata file side.meta.yaml: aliases are not allowed: found *a",
        "pipe.txt": "not a regular file (a named pipe)",
        "loop.md": "symlink loop: following its links never reaches a file",
        "dangling.md": "broken symlink: its target nowhere.md does not exist",
        "sport/up": "symlink loop: it points back to a folder above it (..)",
    }
    if not IS_ROOT:  # root reads whatever the permissions say
        write_article(corpus, "locked.md", "Locked away.", title="Locked")
        (corpus / "locked.md").chmod(0)
        write_article(corpus, "closed/story.md", "Behind a closed door.", title="Closed")
        (corpus / "closed").chmod(0)
        expected["locked.md"] = "cannot read file: Permission denied"
        expected["closed"] = "cannot list folder: Permission denied"
    return expected


def test_every_bad_file_gets_one_line_and_every_good_article_is_indexed(
    env: Path, corpus: Path
) -> None:
    expected = add_bad_files(corpus)
    (corpus / "legacy.txt").write_bytes("Café reopens\n\nThe café reopened.\n".encode("cp1252"))
    (corpus / "utf16.md").write_bytes("Señor Peña\n\nHe spoke today.\n".encode("utf-16-le"))

    result = runner.invoke(app, ["index"])

    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert sorted(lines) == sorted(f"skipped {where}: {why}" for where, why in expected.items())
    rows = summary(result.stdout)
    # aid.md, marathon.md, comet.txt, legacy.txt, utf16.md, and w1 and w3 of feed.jsonl
    assert rows["added"] == "7"
    assert rows["skipped files (could not read)"] == str(len(expected) - 1)
    assert rows["skipped records (bad JSON line or record)"] == "1"


def test_strict_fails_and_leaves_the_index_as_it_was(env: Path, corpus: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    status = runner.invoke(app, ["status", "--json"]).stdout
    question = ["ask", "Who won the Chicago Marathon?", "--json"]
    answer = json.loads(runner.invoke(app, question).stdout)
    write_article(corpus, "aid.md", "The aid total is now $61 billion.", title="US aid")
    (corpus / "photo.txt").write_bytes(PNG)

    result = runner.invoke(app, ["index", "--strict"])

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "problem photo.txt: binary file (a PNG image), not text",
        "error: --strict: 1 problem in 1 corpus file; the index was not changed",
    ]
    assert runner.invoke(app, ["status", "--json"]).stdout == status
    again = json.loads(runner.invoke(app, question).stdout)
    assert again["citations"] == answer["citations"] and answer["found"]

    relaxed = runner.invoke(app, ["index"])

    assert relaxed.exit_code == 0
    assert summary(relaxed.stdout)["updated"] == "1"
    assert summary(relaxed.stdout)["skipped files (could not read)"] == "1"


def test_strict_fails_for_one_bad_jsonl_line(env: Path, corpus: Path) -> None:
    (corpus / "feed.jsonl").write_text('{"id": "w1", "text": "A wind farm."}\nnot json\n')

    result = runner.invoke(app, ["index", "--strict"])

    assert result.exit_code == 1
    assert "problem feed.jsonl:2: invalid JSON line" in result.stderr
    assert "run `newsbot index` first" in runner.invoke(app, ["status"]).stderr


def test_an_article_whose_file_became_unreadable_is_kept_and_counted(
    env: Path, corpus: Path
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    (corpus / "aid.md").unlink()
    os.mkfifo(corpus / "aid.md")

    result = runner.invoke(app, ["index"])

    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "skipped aid.md: not a regular file (a named pipe); "
        "kept the article indexed from aid.md before"
    ]
    rows = summary(result.stdout)
    assert rows["removed"] == "0"
    assert rows["kept as indexed before (file unreadable)"] == "1"
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["articles"] == 3


def harbour_story(corpus: Path) -> str:
    """A story long enough for several chunks; returns its text."""
    paragraphs = [
        f"Paragraph {n} of the harbour story says the city council met again on day {n}. "
        f"Residents of district {n} asked for more ferries and quieter cranes."
        for n in range(1, 13)
    ]
    paragraphs[7] = "The new harbour tunnel cost 4.2 billion euros to build, the council said."
    text = "\n\n".join(paragraphs)
    write_article(corpus, "harbour.md", text, title="Harbour tunnel opens")
    return text


def test_a_rebuild_keeps_the_article_of_an_unreadable_file_chunked_anew(
    env: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = harbour_story(corpus)
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = harbour_chunks(env)
    (corpus / "harbour.md").unlink()
    os.mkfifo(corpus / "harbour.md")
    monkeypatch.setenv("NEWSBOT_CHUNK_TOKENS", "48")
    monkeypatch.setenv("NEWSBOT_CHUNK_OVERLAP", "8")

    result = runner.invoke(app, ["index", "--rebuild"])

    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "skipped harbour.md: not a regular file (a named pipe); "
        "kept the article indexed from harbour.md before"
    ]
    assert summary(result.stdout)["kept as indexed before (file unreadable)"] == "1"
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["articles"] == 4
    after = harbour_chunks(env)
    assert len(after) > len(before)  # chunked anew, at the new size
    assert all(len(chunk.split()) <= 48 for chunk in after)
    sentences = [s for p in text.split("\n\n") for s in p.split(". ")]
    assert all(any(sentence in chunk for chunk in after) for sentence in sentences)
    asked = runner.invoke(app, ["ask", "How much did the new harbour tunnel cost?", "--json"])
    assert asked.exit_code == 0, asked.output
    data = json.loads(asked.stdout)
    assert "4.2 billion euros" in data["answer"]
    assert data["citations"][0]["article_id"] == "harbour.md"

    (corpus / "harbour.md").unlink()
    harbour_story(corpus)  # readable again, as it was
    again = runner.invoke(app, ["index"])
    assert again.exit_code == 0, again.output
    assert again.stderr.strip() == ""
    assert harbour_chunks(env) == after


def harbour_chunks(index_dir: Path) -> list[str]:
    generation = IndexLayout(index_dir).current()
    assert generation is not None
    catalog = Catalog(generation.catalog, writable=False)
    try:
        return [
            passage.chunk.text
            for passage in catalog.passages(catalog.chunk_ids(["harbour.md"])).values()
        ]
    finally:
        catalog.close()
