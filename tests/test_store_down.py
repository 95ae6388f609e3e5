"""The Chroma server goes away: one clear line, no traceback, and recovery without a restart.

Each test runs its own real Chroma server (`chroma run`), and stops and restarts it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import UNAVAILABLE, open_index
from index.build.reindex import reindex
from index.cli.app import app
from index.errors import StoreUnavailableError, VectorsMissingError
from index.newsbot import Newsbot
from index.settings import Settings
from tests.chroma_server import ChromaServer, running_server
from tests.fake_discord import EPHEMERAL
from tests.fakes import FakeEmbedder
from tests.test_bot import AID_QUESTION, Session, running

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A server of the test's own, which it may stop and restart."""
    with running_server(tmp_path / "chroma-server") as server:
        yield server


@pytest.fixture
def on_server(settings: Settings, server: ChromaServer) -> Settings:
    """The tiny corpus's settings, with the vectors on the server."""
    return settings.overridden(chroma_host=server.host, chroma_port=server.port)


@pytest.fixture
def answering(on_server: Settings, fake_embedder: FakeEmbedder) -> Newsbot:
    """A reader of the tiny corpus indexed on the server, shown answering the aid question."""
    reindex(on_server, fake_embedder)
    bot = Newsbot(on_server, fake_embedder)
    assert bot.ask(AID_QUESTION).found
    return bot


def test_ask_says_unavailable_while_the_server_is_down_then_recovers_by_itself(
    answering: Newsbot, server: ChromaServer
) -> None:
    bot = answering
    server.stop()
    for _ in range(2):
        with pytest.raises(StoreUnavailableError) as down:
            bot.ask(AID_QUESTION)
        assert str(down.value).startswith(
            f"index unavailable: cannot reach chroma server 127.0.0.1:{server.port}"
        )
        assert "\n" not in str(down.value)
    server.restart()

    answer = bot.ask(AID_QUESTION)  # the same reader: no reopening by hand
    assert answer.found and "$56.2 billion" in answer.answer
    assert bot.status().vectors == bot.status().chunks


def test_a_restart_between_questions_goes_unnoticed(
    answering: Newsbot, server: ChromaServer
) -> None:
    server.restart()  # the reader's pooled connections are now dead

    assert answering.ask(AID_QUESTION).found


def test_the_cli_exits_with_one_line_while_the_server_is_down(
    on_server: Settings,
    server: ChromaServer,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reindex(on_server, fake_embedder)
    for name, value in {
        "NEWSBOT_CORPUS_DIR": on_server.corpus_dir,
        "NEWSBOT_INDEX_DIR": on_server.index_dir,
        "CHROMA_HOST": server.host,
        "CHROMA_PORT": server.port,
    }.items():
        monkeypatch.setenv(name, str(value))
    server.stop()

    for args in (["ask", AID_QUESTION], ["status"], ["index"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("error: index unavailable: cannot reach chroma server"), lines

    server.restart()
    assert runner.invoke(app, ["ask", AID_QUESTION]).exit_code == 0


def test_a_server_that_lost_its_data_is_refilled_from_the_catalog(
    on_server: Settings, server: ChromaServer, fake_embedder: FakeEmbedder
) -> None:
    first = reindex(on_server, fake_embedder)
    bot = Newsbot(on_server, fake_embedder)
    server.restart(lose_data=True)

    with pytest.raises(VectorsMissingError, match="run `newsbot index` to restore it"):
        bot.ask(AID_QUESTION)
    calls = fake_embedder.calls
    report = reindex(on_server, fake_embedder)

    assert report.vectors_restored and not report.changed
    assert fake_embedder.calls == calls  # the vectors came from the catalog, not the model
    assert report.chunks_total == first.chunks_total
    assert bot.ask(AID_QUESTION).found
    assert not reindex(on_server, fake_embedder).vectors_restored


def test_the_bot_says_unavailable_only_to_the_asker_then_answers_again(
    on_server: Settings, server: ChromaServer, fake_embedder: FakeEmbedder
) -> None:
    reindex(on_server, fake_embedder)

    async def main() -> None:
        async with running(on_server, fake_embedder) as session:
            await steps(session)

    async def steps(s: Session) -> None:
        _, answer = await s.slash_ask(AID_QUESTION)
        assert answer is not None and "$56.2 billion" in str(answer.body)
        await asyncio.to_thread(server.stop)
        _, note = await s.slash_ask(AID_QUESTION)
        assert note is not None and note.flags & EPHEMERAL
        assert note.body["content"] == UNAVAILABLE
        await asyncio.to_thread(server.restart)
        _, answer = await s.slash_ask(AID_QUESTION)
        assert answer is not None and not answer.flags & EPHEMERAL
        assert "$56.2 billion" in str(answer.body)

    asyncio.run(main())


def test_the_bot_started_while_the_server_is_down_waits_for_it(
    on_server: Settings,
    server: ChromaServer,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reindex(on_server, fake_embedder)
    server.stop()
    threading.Timer(1.0, server.restart).start()

    newsbot = open_index(on_server, fake_embedder)

    assert server.heartbeat(), "it opened once the server was back"
    assert "index unavailable" in capsys.readouterr().err
    assert newsbot.ask(AID_QUESTION).found
    newsbot.close()
