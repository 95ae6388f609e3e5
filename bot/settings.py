"""The Discord bot's settings: the core's, and its own, read from the same environment and
`.env`. Declared to the core through the `newsbot.settings` entry point, so that the core's
commands accept these keys in `.env` and `.env.example` lists them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode

from index.settings import Settings, blank_is_none, comma_separated, env_field
from index.text import MAX_QUESTION_CHARS

DISCORD = "The Discord bot (`newsbot bot`)"


class BotSettings(Settings):
    """`newsbot bot`'s configuration: every core setting, and the Discord bot's."""

    discord_token: SecretStr | None = env_field(
        "DISCORD_TOKEN",
        None,
        DISCORD,
        "The bot's token: https://discord.com/developers/applications → your app → Bot → "
        "Reset Token. Secret: keep it in .env only (git ignores .env).",
    )
    discord_guild_id: int | None = env_field(
        "DISCORD_GUILD_ID",
        None,
        DISCORD,
        "A server id: /ask is synced to that server only and appears at once (for "
        "development). Empty: synced globally, which can take up to an hour to appear.",
    )
    discord_message_content: bool = env_field(
        "DISCORD_MESSAGE_CONTENT",
        True,
        DISCORD,
        "Use the privileged Message Content intent (developer portal, Bot → Privileged Gateway "
        "Intents) so follow-ups in a thread started from an answer need no @mention. false: "
        "only /ask, @mentions and DMs are answered.",
    )
    allowed_channel_ids: Annotated[list[int], NoDecode] = env_field(
        "ALLOWED_CHANNEL_IDS",
        [],
        DISCORD,
        "Channel ids, comma-separated, where the bot answers (a thread counts as its channel; "
        "DMs are always answered). Empty: everywhere.",
    )
    bot_rate_limit: int = env_field(
        "BOT_RATE_LIMIT",
        5,
        DISCORD,
        "Questions one user may ask per minute (0 = no limit).",
        ge=0,
    )
    bot_max_question_chars: int = env_field(
        "BOT_MAX_QUESTION_CHARS",
        300,
        DISCORD,
        "Longest question the bot accepts, in characters.",
        ge=10,
        le=MAX_QUESTION_CHARS,
    )

    @field_validator("allowed_channel_ids", mode="before")
    @classmethod  # named apart from the core's validators, which a same name would replace
    def _channel_list(cls, value: Any) -> Any:
        return comma_separated(value)

    @field_validator("discord_token", "discord_guild_id", mode="before")
    @classmethod
    def _blank_discord_is_none(cls, value: Any) -> Any:
        return blank_is_none(value)
