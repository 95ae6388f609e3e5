"""Settings: `.env.example` is generated from the settings, the core's and the Discord bot's,
and shows the real defaults."""

from __future__ import annotations

from pathlib import Path

from bot.settings import BotSettings
from index.env_example import env_example, env_names
from index.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BOT_KEYS = (
    "DISCORD_TOKEN",
    "DISCORD_GUILD_ID",
    "DISCORD_MESSAGE_CONTENT",
    "ALLOWED_CHANNEL_IDS",
    "BOT_RATE_LIMIT",
    "BOT_MAX_QUESTION_CHARS",
)


def example_values() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


def test_env_example_is_the_generated_text() -> None:
    committed = (ROOT / ".env.example").read_text()

    assert committed == env_example(), "run `make env-example` and commit .env.example"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    assert set(example_values()) == set(env_names())


def test_every_setting_is_described() -> None:
    assert all(description.strip() for description in env_names().values())


def test_env_example_values_are_the_defaults(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())

    from_example = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]

    assert from_example == Settings(_env_file=None)  # type: ignore[call-arg]


def test_env_example_lists_the_bots_settings_in_their_own_section() -> None:
    example = (ROOT / ".env.example").read_text()

    assert "# --- The Discord bot (`newsbot bot`) " in example
    assert set(BOT_KEYS) <= set(example_values())


def test_env_example_values_are_the_bots_defaults_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())

    from_example = BotSettings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]

    assert from_example == BotSettings(_env_file=None)  # type: ignore[call-arg]
