"""A bad environment: `NEWSBOT_INDEX_DIR` (or `--index-dir`) naming a file, a `.env` that is
not UTF-8, an unknown key in `.env`. Every command says so in one line and exits 1; the Discord
bot's keys in the same `.env` are not unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app

runner = CliRunner()
COMMANDS = {
    "index": ["index"],
    "ask": ["ask", "How much aid?"],
    "status": ["status"],
}


def one_error_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_index_dir_that_is_a_file_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index\n")
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(a_file))

    line = one_error_line(args)

    assert line == (
        f"error: invalid setting NEWSBOT_INDEX_DIR: {a_file} is a file, not a folder: "
        "point it at a folder"
    )
    assert a_file.read_text() == "not an index\n"


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_index_dir_flag_under_a_file_is_one_line(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index\n")

    line = one_error_line([*args, "--index-dir", str(a_file / "index")])

    assert line == (
        f"error: --index-dir: {a_file / 'index'} is under {a_file}, which is a file, not a "
        "folder: point it at a folder"
    )


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_dotenv_that_is_not_utf8_is_one_line_naming_it(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / ".env").write_bytes(b"NEWSBOT_TOP_K=3\n# caf\xe9 notes\n")

    line = one_error_line(args)

    assert line == (
        f"error: {tmp_path / '.env'} is not UTF-8 (byte 0xe9 on line 2): save it as UTF-8"
    )


# One .env holds the core's settings and the Discord bot's (bot/settings.py, declared through
# the `newsbot.settings` entry point): the core's commands accept the bot's keys.
BOT_KEYS = (
    "DISCORD_TOKEN=not-a-real-token\nDISCORD_GUILD_ID=\nALLOWED_CHANNEL_IDS=1, 2\n"
    "BOT_RATE_LIMIT=3\nBOT_MAX_QUESTION_CHARS=200\nDISCORD_MESSAGE_CONTENT=false\n"
)
REINSTALL = "the bot's settings are not declared: reinstall newsbot (pip install -e '.[dev]')"


def test_the_installed_bot_declares_its_settings() -> None:
    from bot.settings import BotSettings
    from index.adapter_settings import adapter_settings

    assert BotSettings in adapter_settings(), REINSTALL


@pytest.mark.parametrize("args", [["status"], ["ask", "How much aid?"]], ids=["status", "ask"])
def test_a_dotenv_with_the_bots_keys_works_for_the_core_commands(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    (tmp_path / ".env").write_text(f"NEWSBOT_TOP_K=3\n{BOT_KEYS}")

    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_typo_beside_the_bots_keys_still_fails(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / ".env").write_text(f"{BOT_KEYS}DISCORD_TOKNE=abc\n")

    line = one_error_line(args)

    assert line == (
        "error: unknown setting DISCORD_TOKNE in .env (the known ones are in .env.example)"
    )


def test_the_bot_reads_its_keys_from_the_same_dotenv(tmp_path: Path) -> None:
    from bot.settings import BotSettings

    (tmp_path / ".env").write_text(f"NEWSBOT_TOP_K=3\n{BOT_KEYS}")

    settings = BotSettings.read()

    assert settings.top_k == 3
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "not-a-real-token"
    assert settings.discord_guild_id is None  # blank is None
    assert settings.allowed_channel_ids == [1, 2]
    assert (settings.bot_rate_limit, settings.bot_max_question_chars) == (3, 200)
    assert settings.discord_message_content is False


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("BOT_RATE_LIMIT=-1", "BOT_RATE_LIMIT"),
        ("BOT_MAX_QUESTION_CHARS=5", "BOT_MAX_QUESTION_CHARS"),
        ("ALLOWED_CHANNEL_IDS=general", "ALLOWED_CHANNEL_IDS"),
        ("NEWSBOT_TOPK=3", "NEWSBOT_TOPK"),
    ],
)
def test_newsbot_bot_refuses_a_bad_setting_of_its_own_in_one_line(
    env: Path, tmp_path: Path, line: str, name: str
) -> None:
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN=x\n{line}\n")

    error = one_error_line(["bot"])

    assert error.startswith(("error: invalid setting ", "error: unknown setting "))
    assert name in error
