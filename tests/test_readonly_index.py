"""Readers never write: `ask`, `status` and the bot answer from an index they may not write.

Each case runs two ways (`tests/readonly.py`). For real: the index folder bind-mounted
read-only, or on a small tmpfs filled to its last byte (these need root and `mount`, and skip
without them). And always: every write the Python code would make under the index folder
fails as the kernel would fail it; embedded Chroma writes from native code, past any
monkeypatch, so there the folder's files (names, sizes, times, contents) must come out
unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.feedback import FeedbackLog
from index.answer.types import Answer
from index.build.reindex import reindex
from index.cli.app import app
from index.errors import DiskWriteError
from index.models.onnx_export import export_onnx
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import as_before_segments, copy_seed, write_article
from tests.fakes import FakeEmbedder
from tests.readonly import (
    Unwritable,
    fill,
    mounted_read_only,
    refusing_writes,
    small_disk,
    snapshot,
)
from tests.test_bot import AID_QUESTION, custom_ids, embed_of, message_of, running

runner = CliRunner()


# -- the command line -----------------------------------------------------------------------
def ask_and_status() -> None:
    """`newsbot ask --json` and `newsbot status --json` answer as usual."""
    asked = runner.invoke(app, ["ask", AID_QUESTION, "--json"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["found"] and "$56.2 billion" in answer["answer"]
    assert answer["citations"][0]["article_id"] == "aid.md"
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    counts = json.loads(status.stdout)
    assert (counts["articles"], counts["generation"]) == (3, 1)
    assert counts["vectors"] == counts["chunks"] > 0


def test_ask_and_status_on_a_read_only_index(env: Path, unwritable: Unwritable) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = snapshot(env)

    with unwritable(env):
        ask_and_status()
        ask_and_status()  # and again: the first left nothing behind that the second needs
        assert snapshot(env) == before


def test_ask_and_status_on_a_full_disk(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = tmp_path / "disk"
    with small_disk(disk):
        monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(disk / "idx"))
        assert runner.invoke(app, ["index"]).exit_code == 0
        fill(disk)
        before = snapshot(disk / "idx")

        ask_and_status()

        assert snapshot(disk / "idx") == before
        assert os.statvfs(disk).f_bavail == 0


def test_ask_and_status_when_every_write_fails_with_a_full_disk(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    before = snapshot(env)

    with refusing_writes(env, monkeypatch, errno.ENOSPC):
        ask_and_status()

    assert snapshot(env) == before


def test_a_model_export_a_read_only_index_lacks_is_one_clear_line(
    tmp_path: Path, unwritable: Unwritable
) -> None:
    index_dir = tmp_path / "index"
    models = index_dir / "models"
    models.mkdir(parents=True)  # the cache is there, without this model's export

    with unwritable(index_dir), pytest.raises(DiskWriteError) as refused:
        export_onnx("sentence-transformers/all-MiniLM-L6-v2", models, quantized=True)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {models}/") or message.startswith(
        f"no permission to write {models}/"
    )
    assert "EMBED_CACHE_DIR" in message
    assert list(models.iterdir()) == []


# -- the bot --------------------------------------------------------------------------------
def test_the_bot_answers_and_takes_votes_on_a_read_only_index(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    unwritable: Unwritable,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reindex(settings, fake_embedder)
    before = snapshot(settings.index_dir)

    async def main() -> None:
        async with running(settings, fake_embedder) as s:
            _, followup = await s.slash_ask(AID_QUESTION)
            assert followup is not None
            assert "$56.2 billion" in embed_of(followup)["description"]
            assert s.bot.feedback.in_memory
            thanks = await s.click(custom_ids(followup)[0], message_of(s.fake, followup))
            assert thanks.body["data"]["content"].startswith("Thanks — noted as helpful.")

    with unwritable(settings.index_dir), caplog.at_level(logging.WARNING):
        asyncio.run(main())
        assert snapshot(settings.index_dir) == before

    warned = [r.getMessage() for r in caplog.records if r.name == "newsbot.feedback"]
    assert len(warned) == 1
    assert warned[0].startswith(f"cannot write the feedback log {settings.index_dir}")


def test_the_feedback_log_moves_to_memory_when_its_disk_fills(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = FeedbackLog(tmp_path)
    answer = Answer(AID_QUESTION, True, "$56.2 billion [1]. " * 1000)  # a few pages
    before = log.record_answer(answer, user_id=1, channel_id=None, shown=0)
    with log._locked() as db:  # no page more: SQLite fails the next write as on a full disk
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    with caplog.at_level(logging.WARNING):
        after = [log.record_answer(answer, user_id=2, channel_id=None, shown=0) for _ in "ab"]

    assert log.in_memory
    assert all(log.answer(a.id) for a in after) and log.vote(after[0].id, user_id=2, vote="up")
    assert log.answer(before.id) is None  # its buttons say it is forgotten
    warned = [r.getMessage() for r in caplog.records if r.name == "newsbot.feedback"]
    assert len(warned) == 1 and "database or disk is full" in warned[0]
    log.close()
    on_disk = FeedbackLog.existing(tmp_path)
    assert on_disk is not None
    assert on_disk.answer(before.id) is not None and on_disk.entries() == []
    on_disk.close()


# -- the private copy readers open ----------------------------------------------------------
def test_a_reader_removes_its_copy_of_the_vectors_when_it_moves_on_or_closes(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    reindex(settings, fake_embedder)

    def copies() -> list[str]:
        return sorted(p.name for p in scratch.iterdir())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))
        bot = Newsbot(settings, fake_embedder)
        first = copies()
        assert len(first) == 1 and first[0].startswith("newsbot-chroma-")
        write_article(corpus, "volcano.md", "A volcano erupted near Grindavik.", title="Volcano")
        reindex(settings, fake_embedder)
        assert bot.ask("Which volcano erupted near Grindavik?").found  # the next generation
        # It keeps its copy of the segment the two generations share, and copies the new one.
        assert len(copies()) == 2 and set(first) < set(copies())
        bot.close()

    assert copies() == []


def test_the_next_reader_removes_the_copy_of_a_killed_reader_but_not_a_live_ones(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    reindex(settings, fake_embedder)
    hold = (
        "import sys, time\n"
        "from index.newsbot import Newsbot\n"
        "from index.settings import Settings\n"
        "from tests.fakes import FakeEmbedder\n"
        "bot = Newsbot(Settings(), FakeEmbedder())\n"
        "print('open', flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "NEWSBOT_INDEX_DIR": str(settings.index_dir),
        "NEWSBOT_CORPUS_DIR": str(settings.corpus_dir),
    }
    root = Path(__file__).resolve().parent.parent

    def reader() -> subprocess.Popen[str]:
        started = subprocess.Popen(
            [sys.executable, "-c", hold], cwd=root, env=env, stdout=subprocess.PIPE, text=True
        )
        assert started.stdout is not None and started.stdout.readline() == "open\n"
        return started

    killed, alive = reader(), reader()
    try:
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait()
        assert len(list(scratch.iterdir())) == 2

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tempfile, "tempdir", str(scratch))
            bot = Newsbot(settings, fake_embedder)
            # The killed reader's copy is gone; the live one's and this one's remain.
            assert len(list(scratch.iterdir())) == 2
            bot.close()
    finally:
        alive.kill()
        alive.wait()
    assert len(list(scratch.iterdir())) == 1  # the live reader's, until the next reader


def test_no_room_for_the_copy_is_one_clear_line(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    full = tmp_path / "full"
    full.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(full))

    with refusing_writes(full, monkeypatch, errno.ENOSPC):
        asked = runner.invoke(app, ["ask", AID_QUESTION])

    assert asked.exit_code == 1
    line = " ".join(asked.output.split())
    assert line.startswith(f"error: index unavailable: cannot copy the vectors of {env}")
    assert "(No space left on device)" in line and "set TMPDIR" in line


def test_an_index_from_before_generations_answers_from_a_read_only_folder(env: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    generation = as_before_segments(env).root
    for part in generation.iterdir():
        part.rename(env / part.name)
    generation.rmdir()
    (env / "CURRENT").unlink()
    catalog = sqlite3.connect(env / "catalog.sqlite")
    catalog.execute("PRAGMA journal_mode=WAL")  # as catalogs were then
    catalog.close()
    before = snapshot(env)

    with mounted_read_only(env):
        asked = runner.invoke(app, ["ask", AID_QUESTION, "--json"])
        assert asked.exit_code == 0, asked.output
        assert "$56.2 billion" in json.loads(asked.stdout)["answer"]
        assert snapshot(env) == before


@pytest.mark.integration
def test_the_real_model_answers_from_a_read_only_index_holding_its_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwritable: Unwritable
) -> None:
    """The ONNX export in the index's `models/` is read, never written, by a reader."""
    corpus = copy_seed(tmp_path / "corpus")
    index_dir = tmp_path / "index"
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(index_dir))
    monkeypatch.delenv("EMBED_CACHE_DIR")  # the export goes where it does for users
    assert runner.invoke(app, ["index"]).exit_code == 0
    assert any((index_dir / "models").glob("*/model.onnx"))
    before = snapshot(index_dir)

    with unwritable(index_dir):
        asked = runner.invoke(app, ["ask", "What has Biden allowed Ukraine to do?"])
        assert asked.exit_code == 0, asked.output
        # answered or hedged, the seed article's sentence is quoted
        assert "“President Biden has decided to let Ukraine use" in " ".join(asked.stdout.split())
        assert snapshot(index_dir) == before


def test_feedback_lists_the_votes_of_a_read_only_index(
    env: Path, unwritable: Unwritable, fake_embedder: FakeEmbedder
) -> None:
    log = FeedbackLog(env)
    recorded = log.record_answer(
        Answer(AID_QUESTION, True, "$56.2 billion"), user_id=5, channel_id=None, shown=0
    )
    log.vote(recorded.id, user_id=5, vote="up")
    log.close()
    before = snapshot(env)["feedback.sqlite"]

    with unwritable(env):
        listed = runner.invoke(app, ["feedback", "--json"])
        # (In a folder it may write, SQLite adds the -shm and -wal files a WAL reader uses.)
        assert snapshot(env)["feedback.sqlite"] == before

    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["user_id"] for line in listed.stdout.splitlines()] == [5]
