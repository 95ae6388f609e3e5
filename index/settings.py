"""All of newsbot's settings, read once per entry point from the environment and `.env`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLED_MODEL = "all-MiniLM-L6-v2"
EmbedBackend = Literal["torch", "onnx", "onnx-int8"]


def _env(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    """A field read from the environment variable `name` (or its Python name)."""
    return Field(
        default,
        validation_alias=AliasChoices(name),
        description=description,
        **kwargs,
    )


class Settings(BaseSettings):
    """newsbot's configuration. Every field is an environment variable; `.env` is read too.

    Unknown keys in `.env` are rejected so that a typo fails loudly instead of being ignored.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        populate_by_name=True,
        case_sensitive=False,
    )

    corpus_dir: Path = _env("NEWSBOT_CORPUS_DIR", Path("corpus"), "Folder of articles to index.")
    index_dir: Path = _env(
        "NEWSBOT_INDEX_DIR", Path(".newsbot"), "Where the index (vectors, BM25, catalog) lives."
    )
    embed_model: str = _env(
        "EMBED_MODEL",
        BUNDLED_MODEL,
        "sentence-transformers model name or path; the default is bundled (offline).",
    )
    embed_backend: EmbedBackend = _env(
        "EMBED_BACKEND",
        "onnx",
        "What runs the model: torch, onnx (exported locally, same vectors) or onnx-int8 "
        "(quantized: fastest, vectors differ slightly, so changing to or from it needs "
        "`newsbot index --rebuild`).",
    )
    embed_cache_dir: Path | None = _env(
        "EMBED_CACHE_DIR",
        None,
        "Where the ONNX backends keep the model they export (empty = NEWSBOT_INDEX_DIR/models).",
    )
    embed_batch_size: int = _env(
        "EMBED_BATCH_SIZE", 8, "Chunks per model call when indexing.", ge=1
    )
    embed_threads: int = _env(
        "EMBED_THREADS", 0, "Model threads when indexing (0 = one per core).", ge=0
    )
    query_threads: int = _env(
        "QUERY_THREADS",
        1,
        "Model threads when answering (the question and candidate sentences).",
        ge=1,
    )
    chroma_host: str | None = _env(
        "CHROMA_HOST", None, "Use the Chroma server at this host instead of the embedded store."
    )
    chroma_port: int = _env("CHROMA_PORT", 8000, "Port of the Chroma server.", ge=1, le=65535)
    chroma_collection: str = _env(
        "CHROMA_COLLECTION", "newsbot", "Chroma collection holding the chunk vectors."
    )
    chunk_tokens: int = _env(
        "NEWSBOT_CHUNK_TOKENS",
        200,
        "Largest chunk body in model word pieces (the title is added on top).",
        ge=32,
    )
    chunk_overlap: int = _env(
        "NEWSBOT_CHUNK_OVERLAP", 40, "Word pieces shared by neighbouring chunks.", ge=0
    )
    top_k: int = _env("NEWSBOT_TOP_K", 5, "Passages cited per answer.", ge=1, le=50)
    max_per_article: int = _env(
        "NEWSBOT_MAX_PER_ARTICLE", 2, "At most this many passages from one article.", ge=1
    )
    recency_half_life: float = _env(
        "NEWSBOT_RECENCY_HALF_LIFE_DAYS",
        7.0,
        "Articles published shortly before a question rank higher; the lift halves every "
        "this many days (0 turns it off).",
        ge=0.0,
    )
    min_support: float = _env(
        "NEWSBOT_MIN_SUPPORT",
        0.35,
        "Below this support score the answer is 'not covered' (0..1).",
        ge=0.0,
        le=1.0,
    )

    # --- the Discord bot (`newsbot bot`) ---
    discord_token: SecretStr | None = _env(
        "DISCORD_TOKEN", None, "The bot's token (developer portal → your app → Bot). Secret."
    )
    discord_guild_id: int | None = _env(
        "DISCORD_GUILD_ID",
        None,
        "Sync /ask to this server only, instantly (for development); empty = every server.",
    )
    discord_message_content: bool = _env(
        "DISCORD_MESSAGE_CONTENT",
        True,
        "Use the Message Content intent, so follow-ups in a thread need no @mention.",
    )
    allowed_channel_ids: Annotated[list[int], NoDecode] = _env(
        "ALLOWED_CHANNEL_IDS",
        [],
        "Channel ids (comma-separated) where the bot answers; empty = everywhere.",
    )
    bot_rate_limit: int = _env(
        "BOT_RATE_LIMIT", 5, "Questions one user may ask per minute (0 = no limit).", ge=0
    )
    bot_max_question_chars: int = _env(
        "BOT_MAX_QUESTION_CHARS", 300, "Longest question the bot accepts.", ge=10, le=4000
    )

    @field_validator("allowed_channel_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in re.split(r"[\s,]+", value) if part]
        return value

    @field_validator(
        "chroma_host", "discord_token", "discord_guild_id", "embed_cache_dir", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_tokens")
        if size is not None and value >= size:
            raise ValueError(f"must be smaller than NEWSBOT_CHUNK_TOKENS ({size})")
        return value

    def model_cache_dir(self) -> Path:
        """Where an exported model is kept: `EMBED_CACHE_DIR`, else `models/` in the index."""
        return self.embed_cache_dir or self.index_dir / "models"

    def overridden(self, **changes: Any) -> Settings:
        """A copy with the given fields changed; `None` values (unset CLI flags) are ignored."""
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})


def env_names() -> dict[str, str]:
    """Environment variable name → description, for docs and `.env.example` checks."""
    names: dict[str, str] = {}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        names[str(alias.choices[0])] = field.description or ""
    return names
