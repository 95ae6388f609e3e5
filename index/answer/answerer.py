"""Which answer step answers: the extractive one, or a language model's with the extractive
one its fallback. `Newsbot` and `newsbot eval` both build theirs here."""

from __future__ import annotations

import sys
from typing import Any

from index.answer.answer_model import AnswerModel
from index.answer.extractive import Extraction, ExtractiveAnswerer
from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, Answerer
from index.errors import ConfigError
from index.settings import Settings


def answer_mode(settings: Settings) -> str:
    """The mode answers are made in by default: `MODE_LLM` with `NEWSBOT_LLM` set, else
    `MODE_EXTRACTIVE`."""
    return MODE_LLM if settings.llm.strip() else MODE_EXTRACTIVE


def build_answerer(
    settings: Settings, *, mode: str | None = None, extraction: Extraction | None = None
) -> Answerer:
    """The answer step: the extractive one, or (`mode` llm) the language model `NEWSBOT_LLM`
    names, every citation checked, the extractive one its fallback.

    Args:
        settings: the answer model, the language model and its timeout.
        mode: `MODE_EXTRACTIVE` or `MODE_LLM` (default: `answer_mode(settings)`).
        extraction: the extractive step's weights (default: `Extraction.from_settings`).

    Raises:
        ConfigError: `mode` llm without `NEWSBOT_LLM`, or `NEWSBOT_LLM` names a model whose
        provider package is missing.
    """
    offline = ExtractiveAnswerer(
        extraction or Extraction.from_settings(settings), AnswerModel.load(settings.answer_model)
    )
    if (mode or answer_mode(settings)) == MODE_EXTRACTIVE:
        return offline
    from index.answer.llm import LlmAnswerer, load_llm  # LangChain only when it is used

    model = load_llm(settings)
    if model is None:
        raise ConfigError("answering with a language model needs NEWSBOT_LLM, the model to ask")
    return LlmAnswerer(model, offline, timeout=settings.llm_timeout)


def language_model(answerer: Answerer) -> Any:
    """The chat model `answerer` writes with, if it is the language-model answer step."""
    llm_answer = sys.modules.get("index.answer.llm")  # an LlmAnswerer exists only if imported
    if llm_answer is not None and isinstance(answerer, llm_answer.LlmAnswerer):
        return answerer.model
    return None
