"""Which answer step answers: the extractive one, or a language model's with the extractive
one its fallback. `Newsbot` and `newsbot eval` both build theirs here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from index.answer.answer_model import AnswerModel
from index.answer.extractive import Extraction, ExtractiveAnswerer
from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, Answerer
from index.errors import ConfigError
from index.models.chat import load_chat_model
from index.models.reader import Reader, load_reader, reader_directory
from index.settings import Settings

if TYPE_CHECKING:  # LangChain is imported only when a model is used
    from langchain_core.language_models import BaseChatModel


def answer_mode(settings: Settings) -> str:
    """The mode answers are made in by default: `MODE_LLM` with `NEWSBOT_LLM` set, else
    `MODE_EXTRACTIVE`."""
    return MODE_LLM if settings.llm.strip() else MODE_EXTRACTIVE


def load_reader_for(settings: Settings) -> Reader | None:
    """The reader `NEWSBOT_READER` names (`shipped`: the one in the package), or None when
    it is off (empty or `off`: the learned answer model answers)."""
    name = settings.reader.strip()
    if name.lower() in ("", "off"):
        return None
    return load_reader(reader_directory(name), settings.query_threads)


def build_answerer(
    settings: Settings,
    *,
    mode: str | None = None,
    extraction: Extraction | None = None,
    chat_model: BaseChatModel | None = None,
) -> Answerer:
    """The answer step: the extractive one, or (`mode` llm) the language model `NEWSBOT_LLM`
    names, every citation checked, the extractive one its fallback.

    Args:
        settings: the answer model, the language model and its timeout.
        mode: `MODE_EXTRACTIVE` or `MODE_LLM` (default: `MODE_LLM` given `chat_model`, else
            `answer_mode(settings)`).
        extraction: the extractive step's weights (default: `Extraction.from_settings`).
        chat_model: the language model to answer with (default: the one `NEWSBOT_LLM` names,
            loaded here).

    Raises:
        ConfigError: `mode` llm without `NEWSBOT_LLM`, or `NEWSBOT_LLM` names a model whose
        provider package is missing.
    """
    reader = load_reader_for(settings)
    answer_model = None
    if reader is None:
        answer_model = AnswerModel.load(settings.answer_model)
        reader = answer_model.load_reader(settings.query_threads)  # the one it was trained with
    offline = ExtractiveAnswerer(
        extraction or Extraction.from_settings(settings), answer_model, reader
    )
    default = MODE_LLM if chat_model is not None else answer_mode(settings)
    if (mode or default) == MODE_EXTRACTIVE:
        return offline
    from index.answer.llm import LlmAnswerer  # LangChain only when it is used

    model = chat_model or load_chat_model(settings)
    if model is None:
        raise ConfigError("answering with a language model needs NEWSBOT_LLM, the model to ask")
    return LlmAnswerer(
        model, offline, timeout=settings.llm_timeout, max_tokens=settings.llm_max_tokens
    )
