"""A damaged index (issue 30, cases 2 and 3): every command says, in one line, which file is
damaged and which command repairs it, and that command does.

The damaged states are read through the real program (`tests/newsbot_fake.py`, a
subprocess), where a traceback would reach the user; the index is built, and the answers
compared, in-process. The index has two segments: what the first reindex wrote
(`seg-000001`, damaged here) and what a second one added.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from index.build.reindex import reindex
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder

NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
FIRST = 16  # articles the first reindex indexes (segment seg-000001)
ADDED = 4  # articles the second adds (segment seg-000002)
FILLER = "The harbour needed it, people said, and the council agreed after a long debate."


def town(i: int) -> str:
    """Article `i`'s town: a word no other article has (see tests/test_crash_safety.py)."""
    return "zel" + "".join("bcdfghjklm"[int(d)] for d in str(i)) + "ton"


def write_town(corpus: Path, i: int) -> None:
    write_article(
        corpus,
        f"n{i:04d}.md",
        f"The council of {town(i)} approved {100 + i} million dollars for its harbour. {FILLER}",
        title=f"Council of {town(i)}",
    )


QUESTIONS = [town(i) for i in range(FIRST + ADDED)]

Answers = list[tuple[bool, str, str]]


def two_segments(
    tmp_path: Path,
    index_dir: Path,
    embedder: FakeEmbedder,
    *,
    first: int = FIRST,
    between: Callable[[Path], None] = lambda corpus: None,
) -> Settings:
    """An index of two segments over a corpus of towns (`tmp_path/towns`): `first` articles,
    then `between(corpus)` and `ADDED` more."""
    corpus = tmp_path / "towns"
    for i in range(first):
        write_town(corpus, i)
    settings = Settings(corpus_dir=corpus, index_dir=index_dir, embed_model=embedder.name)
    reindex(settings, embedder)
    between(corpus)
    for i in range(first, first + ADDED):
        write_town(corpus, i)
    reindex(settings, embedder)
    return settings


@pytest.fixture
def towns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> Settings:
    """An index of two segments over a corpus of towns; the commands run on it."""
    settings = two_segments(tmp_path, tmp_path / "idx", fake_embedder)
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(settings.index_dir))
    return settings


def answers(settings: Settings, embedder: FakeEmbedder) -> Answers:
    """Each question's answer: found or not, its text, the article it cites first."""
    bot = Newsbot(settings, embedder)
    try:
        out = []
        for question in QUESTIONS:
            answer = bot.ask(question)
            first = answer.citations[0].article_id if answer.citations else ""
            out.append((answer.found, answer.answer, first))
        return out
    finally:
        bot.close()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`newsbot ARGS…` as a program, with the fake model."""
    return subprocess.run(
        [sys.executable, str(NEWSBOT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one-line error `done` printed (status 1, no traceback), holding each of `words`;
    the command it says repairs the damage."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    commands = [c for c in lines[0].split("`")[1::2] if c.startswith("newsbot ")]
    assert len(commands) == 1, lines[0]
    return commands[0]


def repaired_by(command: str) -> subprocess.CompletedProcess[str]:
    """Run the command an error advised; it must succeed."""
    done = run(*shlex.split(command)[1:])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


@pytest.fixture
def before(towns: Settings, fake_embedder: FakeEmbedder) -> Iterator[Answers]:
    found = answers(towns, fake_embedder)
    assert sum(f for f, _, _ in found) >= len(QUESTIONS) // 2  # keyword search finds most
    yield found


def segment(settings: Settings, name: str = "seg-000001") -> Path:
    return settings.index_dir / "segments" / name


def test_a_missing_keyword_file_is_one_line_and_index_repairs_it(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    (segment(towns) / "bm25" / "vocab.index.json").unlink()

    for command in ("ask", "status"):
        args = [command, QUESTIONS[0]] if command == "ask" else [command]
        advice = one_line(run(*args), "segments/seg-000001/bm25/vocab.index.json is missing")
        assert advice == "newsbot index"
    done = repaired_by("newsbot index")

    assert "Repaired segments/seg-000001" in done.stdout
    assert run("status").returncode == 0
    assert answers(towns, fake_embedder) == before


def test_a_truncated_keyword_file_is_one_line_and_index_repairs_it(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    path = segment(towns) / "bm25" / "data.csc.index.npy"
    os.truncate(path, path.stat().st_size // 2)

    for args in (["ask", QUESTIONS[0]], ["status"]):
        advice = one_line(run(*args), "segments/seg-000001/bm25/data.csc.index.npy is cut short")
    done = repaired_by(advice)

    assert "Repaired segments/seg-000001" in done.stdout
    assert answers(towns, fake_embedder) == before


def test_a_truncated_segment_catalog_is_one_line_and_a_rebuild_restores_the_index(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    path = segment(towns) / "catalog.sqlite"
    os.truncate(path, 1000)

    one_line(run("ask", QUESTIONS[0]), "segments/seg-000001/catalog.sqlite is cut short")
    repaired_by("newsbot index --rebuild")

    assert answers(towns, fake_embedder) == before


def test_a_truncated_segment_catalog_is_repaired_by_index(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    os.truncate(segment(towns) / "catalog.sqlite", 1000)

    advice = one_line(run("status"), "segments/seg-000001/catalog.sqlite is cut short")
    done = repaired_by(advice)

    assert "its articles were read again from the corpus" in " ".join(done.stdout.split())
    assert answers(towns, fake_embedder) == before


def test_a_deleted_segment_catalog_is_rebuilt_by_the_command_advised_and_by_rebuild(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    (segment(towns) / "catalog.sqlite").unlink()

    repaired_by("newsbot index --rebuild")  # it used to refuse, advising itself
    assert answers(towns, fake_embedder) == before

    (segment(towns, "seg-000003") / "catalog.sqlite").unlink()  # the rebuild's segment
    one_line(run("ask", QUESTIONS[0]), "segments/seg-000003/catalog.sqlite is missing")
    advice = one_line(run("status"), "segments/seg-000003/catalog.sqlite is missing")
    repaired_by(advice)
    assert answers(towns, fake_embedder) == before


def test_a_truncated_vector_database_is_restored_by_the_command_advised(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    os.truncate(segment(towns) / "chroma" / "chroma.sqlite3", 4096)

    advice = one_line(
        run("ask", QUESTIONS[0]), "segments/seg-000001/chroma/chroma.sqlite3 is cut short"
    )
    repaired_by(advice)

    assert run("status").returncode == 0
    assert answers(towns, fake_embedder) == before


def test_a_deleted_keyword_folder_is_named_by_status_and_repaired_by_index(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    for path in (segment(towns) / "bm25").iterdir():
        path.unlink()
    (segment(towns) / "bm25").rmdir()

    advice = one_line(run("status"), "segments/seg-000001/bm25/ is missing")
    one_line(run("ask", QUESTIONS[0]), "segments/seg-000001/bm25/ is missing")
    done = repaired_by(advice)

    said = " ".join(done.stdout.split())
    assert "Repaired segments/seg-000001 (bm25/ is missing): rebuilt from its catalog" in said
    assert "0 chunks embedded" in said  # from its catalog: no model call
    assert answers(towns, fake_embedder) == before


def without_file_records(settings: Settings) -> None:
    """Make the generation in service look sealed before files were recorded."""
    current = (settings.index_dir / "CURRENT").read_text().strip()
    db = sqlite3.connect(settings.index_dir / current / "catalog.sqlite")
    db.execute("DELETE FROM meta WHERE key = 'files'")
    db.commit()
    db.close()


def test_an_index_sealed_before_files_were_recorded_is_read_and_its_lost_keywords_told(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    without_file_records(towns)
    assert run("status").returncode == 0  # not verifiable is not damage
    assert answers(towns, fake_embedder) == before

    for path in (segment(towns) / "bm25").iterdir():
        path.unlink()

    advice = one_line(run("ask", QUESTIONS[0]), "segments/seg-000001/bm25/", "chunks")
    repaired_by(advice)
    assert answers(towns, fake_embedder) == before


def test_a_damaged_generation_catalog_names_the_rebuild_which_keeps_the_feedback(
    towns: Settings, fake_embedder: FakeEmbedder, before: Answers
) -> None:
    feedback = towns.index_dir / "feedback.sqlite"
    db = sqlite3.connect(feedback)
    db.execute("CREATE TABLE votes (answer TEXT)")
    db.commit()
    db.close()
    current = (towns.index_dir / "CURRENT").read_text().strip()
    os.truncate(towns.index_dir / current / "catalog.sqlite", 5000)

    for args in (["ask", QUESTIONS[0]], ["status"], ["index"]):
        advice = one_line(run(*args), f"{current}/catalog.sqlite cannot be read")
        assert advice == "newsbot index --rebuild"
    repaired_by(advice)

    assert answers(towns, fake_embedder) == before
    db = sqlite3.connect(feedback)
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("votes",)]
    db.close()
