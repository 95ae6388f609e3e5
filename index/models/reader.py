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
SHIPPED = "shipped"  # the name of the reader in the package (NEWSBOT_READER, answer models)
WEIGHTS = "reader.safetensors"
JUDGE_WEIGHTS = "judge.safetensors"
CARD = "reader.json"
QUESTION_TOKENS = 40
SENTENCE_TOKENS = 96
PAIR_TOKENS = 144
JUDGED = 12  # the judge reads this many sentences: those sharing most words with the question
BATCH = 8  # sentences embedded at once
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
    """Scores sentences against a question.

    A reader is a judge (a cross-encoder: `JUDGE_WEIGHTS`) when it has one: it reads the
    question with each of the `JUDGED` sentences sharing most of the question's words.
    A reader without one (an ablation, and the judge's starting point in training) is a
    bi-encoder (`WEIGHTS`): the cosine of the question's and each sentence's embeddings.
    """

    def __init__(
        self, directory: Path | str = READER_DIR, *, threads: int = 1, judge: bool = True
    ) -> None:
        self.directory = Path(directory)
        judge_path = self.directory / JUDGE_WEIGHTS
        self.judge_path = judge_path if judge and judge_path.exists() else None
        card_path = self.directory / CARD
        if not card_path.exists():
            raise ModelLoadError(f"no reader at {self.directory}: {CARD} is missing")
        if self.judge_path is None and not (self.directory / WEIGHTS).exists():
            raise ModelLoadError(
                f"no reader at {self.directory}: neither {JUDGE_WEIGHTS} nor {WEIGHTS} is there"
            )
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
        self._model: Any = None  # the bi-encoder, or the judge
        self._head: Any = None  # the judge's
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
        path = self.judge_path or self.directory / WEIGHTS
        try:
            model = AutoModel.from_pretrained(str(base))
            state = load_file(str(path))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the reader from {path}: {exc}") from exc
        if self.judge_path is not None:
            head = torch.nn.Linear(1, 1)
            try:
                head.weight.data = state.pop("head.weight").float()
                head.bias.data = state.pop("head.bias").float()
            except KeyError as exc:
                raise ModelLoadError(f"the judge {path} has no head") from exc
            self._head = head
        missing = set(state) - set(model.state_dict())
        if missing:
            raise ModelLoadError(
                f"the weights in {path} do not fit the model: {sorted(missing)[:3]}"
            )
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        model.eval()
        torch.set_num_threads(self.threads)
        self._tokenizer = AutoTokenizer.from_pretrained(str(base))
        self._model = model

    def warm_up(self) -> None:
        self.scores("warm up", ["warm up [SEP] |"])

    def embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        """Unit vectors of `texts`, mean-pooled as the bi-encoder was trained."""
        import torch

        if self._model is None:
            self._load()
        batch = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        with torch.inference_mode(), _autocast():
            out = self._model(**batch).last_hidden_state
        return mean_unit(out.float(), batch["attention_mask"]).numpy()

    def cosines(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """The bi-encoder's cosine of `question` with each of `texts` (`reader_text`s)."""
        if self.judge_path is not None:
            raise ModelLoadError(f"{self.directory} is a judge, not a bi-encoder")
        if not texts:
            return np.zeros(0)
        q = self.embed([question], QUESTION_TOKENS)[0]
        # In batches of texts of like length: a batch is padded to its longest text.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
        vectors = np.vstack([self.embed([texts[i] for i in b], SENTENCE_TOKENS) for b in batches])
        out = np.empty(len(texts))
        out[order] = vectors @ q
        return out

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """How well each of `texts` (`reader_text`s) answers `question`, higher better.

        A bi-encoder: its cosines. A judge: its scores of the `JUDGED` texts sharing most
        of the question's words (`overlap`); the others rank below them all, by overlap.
        """
        if self.judge_path is None:
            return self.cosines(question, texts)
        if not texts:
            return np.zeros(0)
        prior = overlap(question, texts)
        best = np.argsort(-prior, kind="stable")[:JUDGED]
        judged = self.judge(question, [texts[i] for i in best])
        below = (prior - prior.max()) / (np.ptp(prior) + 1e-9)  # in [-1, 0]
        out = float(judged.min()) - 2.0 + below
        out[best] = judged
        return out

    def judge(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """The judge's score of `question` read with each of `texts`."""
        import torch

        if self._model is None:
            self._load()
        if self._head is None:
            raise ModelLoadError(f"{self.directory} has no judge")
        batch = self._tokenizer(
            [question] * len(texts),
            list(texts),
            padding=True,
            truncation="only_second",
            max_length=PAIR_TOKENS,
            return_tensors="pt",
        )
        with torch.inference_mode(), _autocast():
            logits = judge_logits(self._model, self._head, batch)
        return logits.float().numpy().astype(np.float64)


def overlap(question: str, texts: Sequence[str]) -> np.ndarray:
    """How much of `question` each of `texts` shares: the summed rarity (within `texts`) of
    the question's terms (stemmed, without stop words) it holds, earlier texts first among
    equals."""
    tokens = _terms([question, *texts])
    asked = set(tokens[0])
    held = [asked.intersection(t) for t in tokens[1:]]
    n = len(texts)
    df = {w: sum(w in h for h in held) for w in asked}
    score = np.array([sum(np.log1p(n / df[w]) for w in h) for h in held], dtype=np.float64)
    return score - 1e-6 * np.arange(n)


def _terms(texts: list[str]) -> list[list[str]]:
    """The reader's own terms (the store's BM25 holds its own: changing one never changes
    the other)."""
    import bm25s

    tokens = bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def judge_logits(model: Any, head: Any, batch: Any) -> torch.Tensor:
    """The judge's score of each pair in `batch` (question, then sentence): the cosine of the
    mean of the question's tokens with the mean of the sentence's, both read together (each
    attends to the other), through `head` (a scale and a bias)."""
    hidden = model(**batch).last_hidden_state
    mask, segment = batch["attention_mask"], batch["token_type_ids"]
    question = mean_unit(hidden, mask * (segment == 0))
    sentence = mean_unit(hidden, mask * (segment == 1))
    cosine = (question * sentence).sum(-1, keepdim=True)
    return head(cosine.to(head.weight.dtype)).squeeze(-1)


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


def reader_directory(name: str) -> str:
    """The folder of the reader `name`: `SHIPPED` (the one in the package) or a folder."""
    return str(READER_DIR) if name.strip().lower() == SHIPPED else name


@functools.cache
def load_reader(directory: str = str(READER_DIR), threads: int = 1) -> Reader:
    """The reader at `directory`, loaded once per process."""
    return Reader(directory, threads=threads)
