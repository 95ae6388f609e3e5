"""The `newsbot` commands, run through typer's CliRunner with the fake model."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bot.feedback import FeedbackLog
from index.answer.types import Answer, Citation
from index.cli.app import app
from index.store.layout import IndexLayout
from tests.fake_discord import TOKEN, serving_in_thread
from tests.fakes import FakeEmbedder
from tests.passages import ANSWER_KEYS

runner = CliRunner()
# The bundled corpus's bridge story and its update a week later.
BRIDGE_CONTRACT = "demo/courier/2025-03-03-old-mill-bridge-contract.md"
BRIDGE_COST_RISES = "demo/courier/2025-03-10-old-mill-bridge-cost-rises.md"


def test_index_reports_what_it_did(env: Path, fake_embedder: FakeEmbedder, corpus: Path) -> None:
    first = runner.invoke(app, ["index"])
    assert first.exit_code == 0, first.output
    assert "added" in first.stdout and "│     3 │" in first.stdout

    (corpus / "science" / "comet.txt").unlink()
    second = runner.invoke(app, ["index"])

    assert second.exit_code == 0, second.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in second.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows["added"] == "0"
    assert rows["removed"] == "1"
    assert rows["unchanged (no model call)"] == "2"


def test_ask_json_prints_one_object(env: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0

    result = runner.invoke(
        app, ["ask", "How much military aid has the United States sent to Ukraine?", "--json"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["found"] is True
    assert "$56.2 billion" in data["answer"]
    assert data["citations"][0]["article_id"] == "aid.md"
    assert set(data) == ANSWER_KEYS
    start, end = data["answer_span"]
    assert data["answer"][start:end] == "$56.2 billion"


def test_ask_renders_numbered_sources(env: Path) -> None:
    runner.invoke(app, ["index"])

    result = runner.invoke(app, ["ask", "Who won the Chicago Marathon?", "--k", "2"])

    assert result.exit_code == 0, result.output
    assert "Chepngetich" in result.stdout
    assert "[1] Chepngetich breaks marathon record" in result.stdout
    assert "[3]" not in result.stdout


def test_ask_flags_override_settings(bundled_env: Path) -> None:
    """The bundled corpus's bridge story: its cost, reported on 3 March, rose on 10 March."""
    assert runner.invoke(app, ["index"]).exit_code == 0
    question = "How much will it cost to repair the Old Mill Bridge?"
    until = json.loads(
        runner.invoke(app, ["ask", question, "--json", "--until", "2025-03-09"]).stdout
    )
    assert until["citations"][0]["article_id"] == BRIDGE_CONTRACT
    assert all((c["published"] or "") <= "2025-03-09" for c in until["citations"])

    result = runner.invoke(app, ["ask", question, "--json", "--since", "2025-03-10"])

    data = json.loads(result.stdout)
    assert data["found"] and data["citations"]
    assert data["citations"][0]["article_id"] == BRIDGE_COST_RISES
    assert all((c["published"] or "") >= "2025-03-10" for c in data["citations"])


def test_status_json(env: Path) -> None:
    runner.invoke(app, ["index"])

    result = runner.invoke(app, ["status", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["articles"] == 3
    assert data["chunks"] == data["vectors"] > 0
    assert data["model"] == "fake:384"
    assert data["dimension"] == 384
    assert data["last_indexed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "anything"], "run `newsbot index` first"),
        (["status"], "run `newsbot index` first"),
        (["index", "--corpus", "/no/such/folder"], "corpus folder not found"),
        (["ask", "anything", "--since", "last tuesday-ish"], "--since wants a date"),
    ],
)
def test_bad_input_is_one_clear_line(env: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_invalid_setting_is_one_clear_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSBOT_TOP_K", "lots")

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 1
    assert "NEWSBOT_TOP_K" in result.stderr


def test_unknown_key_in_dotenv_is_rejected(env: Path, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NEWSBOT_TOPK=3\n")

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 1
    assert "NEWSBOT_TOPK" in result.stderr


def test_dotenv_is_read(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSBOT_INDEX_DIR")
    (tmp_path / ".env").write_text(f"NEWSBOT_INDEX_DIR={tmp_path / 'from-dotenv'}\n")

    result = runner.invoke(app, ["index"])

    assert result.exit_code == 0, result.output
    assert IndexLayout(tmp_path / "from-dotenv").exists()


def test_bad_corpus_file_is_named_and_the_rest_indexed(env: Path, corpus: Path) -> None:
    (corpus / "broken.md").write_text("---\ntitle: [oops\n---\ntext\n")

    result = runner.invoke(app, ["index"])

    assert result.exit_code == 0
    assert "broken.md" in result.stderr
    assert "│     3 │" in result.stdout


def test_help_names_the_settings_behind_each_default() -> None:
    result = runner.invoke(app, ["ask", "--help"], terminal_width=200)

    assert result.exit_code == 0
    assert "NEWSBOT_TOP_K" in result.stdout
    assert "NEWSBOT_INDEX_DIR" in result.stdout


# -- the bot and its feedback ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "DISCORD_TOKEN is not set"),
        ("", "DISCORD_TOKEN is not set"),
        ("hunter2", "does not look like a bot token"),
        (f"Bot {TOKEN}", "leave out the 'Bot ' prefix"),
    ],
)
def test_bot_without_a_usable_token_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, token: str | None, message: str
) -> None:
    if token is not None:
        monkeypatch.setenv("DISCORD_TOKEN", token)

    result = runner.invoke(app, ["bot"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "developers/applications" in result.stderr  # says where to get one
    assert "hunter2" not in result.stderr


def test_bot_without_discord_py_says_how_to_install_it(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setitem(sys.modules, "discord", None)  # as if discord.py were not installed
    monkeypatch.delitem(sys.modules, "bot.app", raising=False)

    result = runner.invoke(app, ["bot"])

    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "error: newsbot bot needs discord.py, an extra: pip install 'newsbot[discord]'"
    ]


MESSAGE_CONTENT_INTENT = 1 << 15


@pytest.mark.parametrize(
    ("options", "message", "identified"),
    [
        ({"token": TOKEN.replace("abc", "xyz")}, "Discord rejected DISCORD_TOKEN", False),
        ({"refuse_message_content": True}, "Message Content intent", True),
    ],
)
def test_bot_refused_by_discord_is_one_line(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    message: str,
    identified: bool,
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)

    with serving_in_thread(**options) as fake:
        result = runner.invoke(app, ["bot"])

    # Discord refused it: the bot logged in first, and (refused an intent) asked for it on
    # the gateway; a bad token never gets that far.
    assert fake.requests, "the bot never asked Discord"
    assert fake.requests[0].path == "/users/@me"
    if identified:
        assert fake.identified is not None
        assert fake.identified["intents"] & MESSAGE_CONTENT_INTENT
    else:
        assert fake.identified is None
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert TOKEN not in result.output


def test_bot_without_an_index_says_to_build_one(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)

    result = runner.invoke(app, ["bot"])

    assert result.exit_code == 1
    assert "run `newsbot index`" in result.stderr


def test_feedback_lists_votes_as_table_and_json(env: Path) -> None:
    assert "No feedback yet" in runner.invoke(app, ["feedback"]).stdout
    log = FeedbackLog(env)
    answer = Answer(
        "How much aid?",
        True,
        "$56.2 billion [1]",
        [Citation(1, "aid.md", "US aid", "Example News", "https://e.com/a", "2024-11-17", "p")],
    )
    first = log.record_answer(answer, user_id=42, channel_id=7, shown=5).id
    log.vote(first, user_id=42, vote="up")
    log.vote(first, user_id=43, vote="down")
    log.close()

    table = runner.invoke(app, ["feedback"])
    lines = runner.invoke(app, ["feedback", "--json"]).stdout.splitlines()
    downs = runner.invoke(app, ["feedback", "--json", "--vote", "down"]).stdout.splitlines()

    assert table.exit_code == 0 and "How much aid?" in table.stdout and "👎" in table.stdout
    rows = [json.loads(line) for line in lines]
    assert {(r["user_id"], r["vote"]) for r in rows} == {(42, "up"), (43, "down")}
    assert rows[0]["sources"] == [
        {
            "n": 1,
            "title": "US aid",
            "source": "Example News",
            "published": "2024-11-17",
            "url": "https://e.com/a",
        }
    ]
    assert [json.loads(line)["user_id"] for line in downs] == [43]
    bad = runner.invoke(app, ["feedback", "--vote", "meh"])
    assert bad.exit_code == 1 and "--vote wants 'up' or 'down'" in bad.stderr


# -- help --------------------------------------------------------------------------------------
def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group under `group` (the adapters' too), with the words naming it."""
    found = [(path, group)]
    for name, command in getattr(group, "commands", {}).items():
        found += commands(command, (*path, name))
    return found


EVERY_COMMAND = commands(typer.main.get_command(app))
COMMAND_NAMES = [" ".join(path) or "newsbot" for path, _ in EVERY_COMMAND]


def test_every_command_has_help() -> None:
    names = {" ".join(path) for path, _ in EVERY_COMMAND}
    assert {"", "index", "ask", "chat", "eval", "add", "feeds add", "bot", "feedback"} <= names


@pytest.mark.parametrize("path", [path for path, _ in EVERY_COMMAND], ids=COMMAND_NAMES)
def test_help_shows_what_to_type_never_a_python_type(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})

    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "<list[" not in result.output


@pytest.mark.parametrize("command", [c for _, c in EVERY_COMMAND], ids=COMMAND_NAMES)
def test_a_commands_help_is_whole_sentences_its_summary_one_line(command: Any) -> None:
    summary, *rest = inspect.cleandoc(command.help or "").split("\n\n")
    assert "\n" not in summary and summary.endswith("."), summary
    for line in "\n".join(rest).splitlines():  # each line is shown as it is: a whole sentence
        assert not line or line.endswith("."), line


def test_the_command_list_shows_each_summary_whole() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})

    rows = [" ".join(line.strip("│ ").split()) for line in result.output.splitlines()]
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        summary = inspect.cleandoc(command.help or "").split("\n\n")[0]
        assert f"{name} {summary}" in rows, summary
