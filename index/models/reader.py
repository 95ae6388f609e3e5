"""The reader: all-MiniLM-L6-v2 fine-tuned here to tell which sentence answers a question.

It embeds the question and each candidate sentence, read with its context (the article's
title and the end of the sentence before it in the passage), and scores the pair by the
cosine of the two. `index.learn.reader` trains it on questions with known answers; the
weights it ships (`index/models/reader/`) are the six transformer layers only, in float16:
the word embeddings are the bundled model's own, frozen in training, and loaded from it.
Nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import ModelLoadError
from index.models.embeddings import bundled_model_path

if TYPE_CHECKING:
    import torch

READER_DIR = Path(__file__).with_name("reader")
WEIGHTS = "reader.safetensors"
CARD = "reader.json"
QUESTION_TOKENS = 40
SENTENCE_TOKENS = 96
CONTEXT_WORDS = 12  # words of the sentence before that a sentence is read with
TITLE_WORDS = 14
_SPACE = re.compile(r"\s+")


def reader_text(sentence: str, title: str = "", previous: str = "") -> str:
    """What the reader sees of a sentence: the sentence first (truncation cuts the context,
    never it), then its article's title and the end of the sentence before it."""
    title_words = _SPACE.split(title.strip())[:TITLE_WORDS] if title.strip() else []
    before = _SPACE.split(previous.strip())[-CONTEXT_WORDS:] if previous.strip() else []
    return f"{sentence.strip()} [SEP] {' '.join(title_words)} | {' '.join(before)}".strip()


@dataclass(frozen=True)
class Calibration:
    """How a reader's scores become the chance that its best sentence answers the question:
    a logistic regression on `FEATURES` (`calibration_row`), and the thresholds chosen."""

    weights: tuple[float, ...]
    bias: float
    answer_above: float
    hedge_above: float
    relevant_above: float
    """A sentence scoring this much or more bears on the question (a hedge quotes it; a
    source naming the same answer is shown)."""
    sure_above: float
    """The chance from which the answer itself (a name, number, date) is underlined."""
    passages: int = 3
    """The sentences of the best this many passages are read."""

    def probability(self, row: Sequence[float] | np.ndarray) -> float:
        z = float(np.dot(self.weights, row) + self.bias)
        return float(1.0 / (1.0 + np.exp(-z)))


CALIBRATION_FEATURES = ("best", "margin", "mean_top3")


def calibration_row(scores: np.ndarray) -> list[float]:
    """What the calibration reads of one question's sentence scores (best first or not): the
    best score, its lead over the next, and the mean of the best three."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if ordered.size == 0:
        return [0.0, 0.0, 0.0]
    second = ordered[1] if ordered.size > 1 else ordered[0] - 0.1
    return [float(ordered[0]), float(ordered[0] - second), float(ordered[:3].mean())]


class Reader:
    """Scores sentences against a question (the cosine of their embeddings)."""

    def __init__(self, directory: Path | str = READER_DIR, *, threads: int = 1) -> None:
        self.directory = Path(directory)
        card_path = self.directory / CARD
        if not card_path.exists():
            raise ModelLoadError(f"no reader at {self.directory}: {CARD} is missing")
        self.card: dict[str, Any] = json.loads(card_path.read_text())
        c = self.card["calibration"]
        self.calibration = Calibration(
            tuple(c["weights"]),
            c["bias"],
            c["answer_above"],
            c["hedge_above"],
            c["relevant_above"],
            c["sure_above"],
            c.get("passages", 3),
        )
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local, always
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        base = bundled_model_path()
        try:
            model = AutoModel.from_pretrained(str(base))
            state = load_file(str(self.directory / WEIGHTS))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the reader from {self.directory}: {exc}") from exc
        missing = set(state) - set(model.state_dict())
        if missing:
            raise ModelLoadError(
                f"the reader's weights do not fit its model: {sorted(missing)[:3]}"
            )
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        model.eval()
        torch.set_num_threads(self.threads)
        self._tokenizer = AutoTokenizer.from_pretrained(str(base))
        self._model = model

    def warm_up(self) -> None:
        self.scores("warm up", ["warm up [SEP] |"])

    def embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        """Unit vectors of `texts`, mean-pooled as the model was trained."""
        import torch

        if self._model is None:
            self._load()
        batch = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        with torch.inference_mode(), _autocast():
            out = self._model(**batch).last_hidden_state
        return mean_unit(out.float(), batch["attention_mask"]).numpy()

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """The cosine of `question` with each of `texts` (`reader_text`s)."""
        if not texts:
            return np.zeros(0)
        q = self.embed([question], QUESTION_TOKENS)[0]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        vectors = self.embed([texts[i] for i in order], SENTENCE_TOKENS)
        out = np.empty(len(texts))
        out[order] = vectors @ q
        return out


def mean_unit(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` over the tokens `mask` keeps, at unit length: the sentence vector the
    reader is trained and run with."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _autocast() -> Any:
    """bfloat16 where the CPU computes it natively (AMX or AVX-512 BF16), else float32."""
    import contextlib

    import torch

    if _native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def _native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@functools.cache
def load_reader(directory: str = str(READER_DIR), threads: int = 1) -> Reader:
    """The reader at `directory`, loaded once per process."""
    return Reader(directory, threads=threads)
