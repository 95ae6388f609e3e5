"""Evaluation: ask a set of news questions with known answers and score the answers.

The metrics are those of `../shared/eval/README.md`, computed exactly so:
- strict hit@k: one of the first k cited passages contains an answer string (case-insensitive,
  on word boundaries) and comes from a gold article;
- loose hit@k: one of the first k cited passages contains an answer string;
- answer accuracy: the answer text shown to the user contains an answer string;
- latency of the whole answer, p50 and p95, warm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.answer import Answer
from index.corpus.metadata import normalise_date
from index.errors import NewsbotError

STRICT_KS = (1, 3, 5, 10)
LOOSE_KS = (5,)
CITED_FOR_EVAL = max(STRICT_KS)  # passages asked for, so hit@10 can be computed
WORST_MISSES = 10


@dataclass(frozen=True)
class EvalQuestion:
    """A question with the strings that answer it and the articles it is about."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_article_ids: frozenset[str] = frozenset()
    date: str | None = None


@dataclass(frozen=True)
class Scored:
    """One question's answer, scored."""

    question: EvalQuestion
    answer: Answer
    strict_rank: int | None  # 1-based rank of the first strict hit among the citations
    loose_rank: int | None
    answer_correct: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.question.id,
            "question": self.question.question,
            "date": self.question.date,
            "answers": list(self.question.answers),
            "strict_rank": self.strict_rank,
            "loose_rank": self.loose_rank,
            "answer_correct": self.answer_correct,
            "found": self.answer.found,
            "answer": self.answer.answer,
            "cited": [c.article_id for c in self.answer.citations],
            "latency_ms": self.answer.latency_ms,
        }


@dataclass
class EvalReport:
    """The figures over a question set."""

    scored: list[Scored] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.scored)

    def strict_hit(self, k: int) -> float:
        return self._share(lambda s: s.strict_rank is not None and s.strict_rank <= k)

    def loose_hit(self, k: int) -> float:
        return self._share(lambda s: s.loose_rank is not None and s.loose_rank <= k)

    @property
    def answer_accuracy(self) -> float:
        return self._share(lambda s: s.answer_correct)

    @property
    def not_covered(self) -> float:
        return self._share(lambda s: not s.answer.found)

    def latency(self, q: float) -> float:
        values = [s.answer.latency_ms for s in self.scored]
        return float(np.percentile(values, q)) if values else float("nan")

    def worst_misses(self, n: int = WORST_MISSES) -> list[Scored]:
        """Questions with no strict hit at all, then those whose hit came latest."""
        missed = [s for s in self.scored if s.strict_rank is None]
        late = sorted(
            (s for s in self.scored if s.strict_rank is not None and s.strict_rank > 1),
            key=lambda s: -(s.strict_rank or 0),
        )
        return (missed + late)[:n]

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {f"strict_hit@{k}": self.strict_hit(k) for k in STRICT_KS}
        out.update({f"loose_hit@{k}": self.loose_hit(k) for k in LOOSE_KS})
        out["answer_accuracy"] = self.answer_accuracy
        out["not_covered"] = self.not_covered
        out["latency_p50_ms"] = self.latency(50)
        out["latency_p95_ms"] = self.latency(95)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.count,
            "figures": self.figures(),
            "worst_misses": [s.to_dict() for s in self.worst_misses()],
            "results": [s.to_dict() for s in self.scored],
        }

    def _share(self, test: Callable[[Scored], bool]) -> float:
        return sum(1 for s in self.scored if test(s)) / self.count if self.scored else 0.0


def answer_pattern(answers: Iterable[str]) -> re.Pattern[str] | None:
    """Matches any answer string, case-insensitive, on word boundaries."""
    parts = [re.escape(a.strip()) for a in answers if a.strip()]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


def score(question: EvalQuestion, answer: Answer) -> Scored:
    """Score `answer` against what answers `question`."""
    pattern = answer_pattern(question.answers)
    strict = loose = None
    correct = False
    if pattern is not None:
        for rank, citation in enumerate(answer.citations, start=1):
            if pattern.search(citation.passage):
                loose = loose or rank
                if strict is None and citation.article_id in question.gold_article_ids:
                    strict = rank
        correct = answer.found and pattern.search(answer.answer) is not None
    return Scored(question, answer, strict, loose, correct)


def read_questions(path: Path) -> list[EvalQuestion]:
    """Questions from a JSONL file of `{"id"?, "question", "answers", "gold_article_ids"?,
    "date"?}` objects (the eval set's format).

    Raises:
        NewsbotError: the file is missing or a line is not such an object.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NewsbotError(f"cannot read questions {path}: {exc.strerror or exc}") from exc
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NewsbotError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not str(record.get("question") or "").strip():
            raise NewsbotError(f"{where}: expected an object with a 'question'")
        answers = record.get("answers")
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise NewsbotError(f"{where}: 'answers' must be a list of strings")
        day = record.get("date") or None
        if day is not None and normalise_date(day) is None:
            raise NewsbotError(f"{where}: 'date' must be a date such as 2024-01-05, not {day!r}")
        questions.append(
            EvalQuestion(
                id=str(record.get("id") or number),
                question=str(record["question"]),
                answers=tuple(answers),
                gold_article_ids=frozenset(str(i) for i in record.get("gold_article_ids") or []),
                date=normalise_date(day) if day else None,
            )
        )
    if not questions:
        raise NewsbotError(f"no questions in {path}")
    return questions


def evaluate(
    questions: Sequence[EvalQuestion],
    ask: Callable[[EvalQuestion], Answer],
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Ask every question (through `ask`) and score the answers."""
    report = EvalReport()
    for done, question in enumerate(questions, start=1):
        report.scored.append(score(question, ask(question)))
        if progress:
            progress(done, len(questions))
    return report
