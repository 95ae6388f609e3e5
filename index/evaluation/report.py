"""Evaluation: ask a set of news questions with known answers and score the answers.

The metrics are those of `../shared/eval/README.md`, computed exactly so:
- strict hit@k: one of the first k passages, in the answer step's order (its cited ones
  first), contains an answer string (case-insensitive,
  on word boundaries) and comes from a gold article;
- loose hit@k: one of those first k passages contains an answer string;
- answer accuracy: the answer text shown to the user contains an answer string (an answer,
  or a hedge's quote: both are shown);
- latency of the whole answer, p50 and p95, warm.

And what a user trusts an answer by:
- not covered: the share of questions answered "not covered" — on questions the articles
  answer (covered: it should be near 0) and on questions they don't (uncovered, asked of an
  index without the articles that answer them: it should be near 1);
- hedged: the share of questions answered with a hedge ("the articles don't say for sure;
  the closest they come: ..."): neither an answer nor "not covered";
- wrong answers: over covered and uncovered questions together, the share given an answer
  (not a hedge, not "not covered") whose text holds no answer string;
- sources holding the answer: of the sources a user is shown under the covered questions'
  answers (at most `shown`, NEWSBOT_TOP_K), the share whose passage contains an answer
  string.

And each kind of reply apart (issue 28), over the covered questions:
- outright, hedged, not covered: the shares answered outright (`found`), with a hedge, and
  "not covered" (they sum to 1; the last two are the figures above);
- right: answered outright, the answer text holding an answer string;
- useful: answered outright or hedged, the text shown holding an answer string (the same
  test as answer accuracy, so the same share);
- confidently wrong: answered outright, the answer text holding no answer string;
and over the uncovered questions: the shares answered "not covered", hedged, and outright
(every outright answer there is confidently wrong). "Holds an answer string" is
`answer_pattern`'s match, as for answer accuracy.

And with a language model writing the answers (`mode` llm), over every question asked,
covered and uncovered:
- claims made: the claims the model made (those of an answer saying "not covered" are not
  checked, so not counted);
- claims verified: of those, the share shown, a cited passage holding the quote and the
  sentence stating nothing more;
- claims dropped by quote check and by claim check: of those, the shares dropped because no
  cited passage held the quote (or it was too short or long, or past the cap), and because
  the quote verified but the sentence stated a figure or name it does not hold, or bore on
  something else (`index.answer.claims`); with claims verified they sum to 1;
- fallback: the share of questions given the offline answer instead of the model's, and
  that share by reason (`index.answer.types.FALLBACKS`): the model failed (an error, a 429, a
  timeout, malformed output), none of its claims verified, no passage was retrieved to ask
  it about, it said "not covered" where the offline answer step answered outright, or it
  gave no claims.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.answer.types import FALLBACKS, MODE_EXTRACTIVE, MODE_LLM, Answer
from index.errors import NewsbotError
from index.ingest.corpus.metadata import normalise_date

STRICT_KS = (1, 3, 5, 10)
LOOSE_KS = (5,)
CITED_FOR_EVAL = max(STRICT_KS)  # passages asked for, so hit@10 can be computed
SHOWN_SOURCES = 5  # sources a user is shown by default (NEWSBOT_TOP_K)
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
    shown_sources: int = 0  # citations a user is shown (at most NEWSBOT_TOP_K)
    sources_holding: int = 0  # of those, the ones whose passage holds an answer string

    @property
    def not_covered(self) -> bool:
        """Answered "not covered": neither an answer nor a hedge."""
        return not self.answer.found and not self.answer.hedged

    @property
    def right(self) -> bool:
        """Answered outright, with an answer text that holds an answer string."""
        return self.answer.found and self.answer_correct

    @property
    def wrong(self) -> bool:
        """Answered outright, with an answer text that holds no answer string: confidently
        wrong."""
        return self.answer.found and not self.answer_correct

    def to_dict(self) -> dict[str, Any]:
        asked_a_model = self.answer.mode == MODE_LLM or self.answer.fallback is not None
        return {
            "id": self.question.id,
            "question": self.question.question,
            "date": self.question.date,
            "answers": list(self.question.answers),
            "strict_rank": self.strict_rank,
            "loose_rank": self.loose_rank,
            "answer_correct": self.answer_correct,
            "shown_sources": self.shown_sources,
            "sources_holding": self.sources_holding,
            "found": self.answer.found,
            "hedged": self.answer.hedged,
            "confidence": self.answer.confidence,
            "answer": self.answer.answer,
            "cited": [c.article_id for c in self.answer.citations],
            "latency_ms": self.answer.latency_ms,
            "mode": self.answer.mode,
            "claims": self.answer.claims,
            "dropped_claims": self.answer.dropped_claims,
            "fallback": self.answer.fallback,
        } | ({"ungrounded_claims": self.answer.ungrounded_claims} if asked_a_model else {})


@dataclass
class EvalReport:
    """The figures over a question set, and over questions the index cannot answer; `mode`
    is the answer step's (`MODE_LLM`: a language model's, with its own figures)."""

    scored: list[Scored] = field(default_factory=list)
    uncovered: list[Scored] = field(default_factory=list)
    mode: str = MODE_EXTRACTIVE
    ranks: int = CITED_FOR_EVAL  # passages each answer ranks: hit@k up to k = ranks

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
        return self._share(lambda s: s.not_covered)

    @property
    def hedged(self) -> float:
        return self._share(lambda s: s.answer.hedged)

    @property
    def outright(self) -> float:
        """The share of covered questions answered outright: neither hedged nor "not
        covered"."""
        return self._share(lambda s: s.answer.found)

    @property
    def right(self) -> float:
        """The share of covered questions answered outright and right."""
        return self._share(lambda s: s.right)

    @property
    def useful(self) -> float:
        """The share of covered questions answered outright or hedged, the text shown holding
        an answer string: answer accuracy's test, so its value."""
        return self._share(lambda s: (s.answer.found or s.answer.hedged) and s.answer_correct)

    @property
    def confidently_wrong(self) -> float:
        """The share of covered questions answered outright without an answer string."""
        return self._share(lambda s: s.wrong)

    @property
    def uncovered_hedged(self) -> float:
        return self._uncovered_share(lambda s: s.answer.hedged)

    @property
    def uncovered_outright(self) -> float:
        """The share of uncovered questions answered outright: each one confidently wrong."""
        return self._uncovered_share(lambda s: s.answer.found)

    @property
    def sources_holding_answer(self) -> float:
        """Of the sources shown under the covered questions' answers, the share holding an
        answer string."""
        shown = sum(s.shown_sources for s in self.scored)
        return sum(s.sources_holding for s in self.scored) / shown if shown else 0.0

    @property
    def wrong_answers(self) -> float:
        """Covered and uncovered questions answered without an answer string."""
        every = [*self.scored, *self.uncovered]
        return sum(1 for s in every if s.wrong) / len(every) if every else 0.0

    @property
    def uncovered_not_covered(self) -> float:
        """The share of uncovered questions answered "not covered"."""
        return self._uncovered_share(lambda s: s.not_covered)

    @property
    def claims_made(self) -> int:
        """The claims a model made, over every question asked."""
        return sum(s.answer.claims for s in self._asked)

    @property
    def claims_verified(self) -> float:
        """Of the claims a model made, the share shown (a cited passage holds the quote, and
        the claim states nothing more)."""
        made = self.claims_made
        dropped = sum(s.answer.dropped_claims for s in self._asked)
        return (made - dropped) / made if made else 0.0

    @property
    def claims_dropped_by_quote(self) -> float:
        """Of the claims a model made, the share dropped by the quote check (no cited passage
        holds the quote; too short, too long, past the cap)."""
        made = self.claims_made
        dropped = sum(s.answer.dropped_claims - s.answer.ungrounded_claims for s in self._asked)
        return dropped / made if made else 0.0

    @property
    def claims_dropped_by_claim(self) -> float:
        """Of the claims a model made, the share dropped by the claim check (the quote
        verified; the sentence stated a figure or name it does not hold, or something else)."""
        made = self.claims_made
        return sum(s.answer.ungrounded_claims for s in self._asked) / made if made else 0.0

    def fallback(self, reason: str | None = None) -> float:
        """The share of every question asked given the offline answer instead of the
        model's: for any reason, or for `reason` (one of `FALLBACKS`)."""
        asked = self._asked
        fell = [s for s in asked if s.answer.fallback is not None]
        if reason is not None:
            fell = [s for s in fell if s.answer.fallback == reason]
        return len(fell) / len(asked) if asked else 0.0

    @property
    def _asked(self) -> list[Scored]:
        return [*self.scored, *self.uncovered]

    def latency(self, q: float) -> float:
        values = [s.answer.latency_ms for s in [*self.scored, *self.uncovered]]
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
        out: dict[str, float] = {
            f"strict_hit@{k}": self.strict_hit(k) for k in STRICT_KS if k <= self.ranks
        }
        out.update({f"loose_hit@{k}": self.loose_hit(k) for k in LOOSE_KS if k <= self.ranks})
        out["answer_accuracy"] = self.answer_accuracy
        out["not_covered"] = self.not_covered
        out["hedged"] = self.hedged
        out["outright"] = self.outright
        out["right"] = self.right
        out["useful"] = self.useful
        out["confidently_wrong"] = self.confidently_wrong
        out["sources_holding_answer"] = self.sources_holding_answer
        if self.uncovered:
            out["uncovered_not_covered"] = self.uncovered_not_covered
            out["uncovered_hedged"] = self.uncovered_hedged
            out["uncovered_outright"] = self.uncovered_outright
        out["wrong_answers"] = self.wrong_answers
        if self.mode == MODE_LLM:
            out["claims_made"] = self.claims_made
            out["claims_verified"] = self.claims_verified
            out["claims_dropped_by_quote"] = self.claims_dropped_by_quote
            out["claims_dropped_by_claim"] = self.claims_dropped_by_claim
            out["fallback"] = self.fallback()
            for reason in FALLBACKS:
                out[f"fallback_{reason.replace(' ', '_')}"] = self.fallback(reason)
        out["latency_p50_ms"] = self.latency(50)
        out["latency_p95_ms"] = self.latency(95)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "questions": self.count,
            "uncovered_questions": len(self.uncovered),
            "figures": self.figures(),
            "worst_misses": [s.to_dict() for s in self.worst_misses()],
            "results": [s.to_dict() for s in self.scored],
            "uncovered_results": [s.to_dict() for s in self.uncovered],
        }

    def _share(self, test: Callable[[Scored], bool]) -> float:
        return sum(1 for s in self.scored if test(s)) / self.count if self.scored else 0.0

    def _uncovered_share(self, test: Callable[[Scored], bool]) -> float:
        if not self.uncovered:
            return 0.0
        return sum(1 for s in self.uncovered if test(s)) / len(self.uncovered)


def answer_pattern(answers: Iterable[str]) -> re.Pattern[str] | None:
    """Matches any answer string, case-insensitive, on word boundaries."""
    parts = [re.escape(a.strip()) for a in answers if a.strip()]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


def score(question: EvalQuestion, answer: Answer, *, shown: int = SHOWN_SOURCES) -> Scored:
    """Score `answer` against what answers `question`; a user is shown `shown` sources."""
    pattern = answer_pattern(question.answers)
    strict = loose = None
    correct = False
    holding = 0
    shown_citations = answer.citations[:shown]
    if pattern is not None:
        for rank, citation in enumerate(answer.ranked or answer.citations, start=1):
            if pattern.search(citation.passage):
                loose = loose or rank
                if strict is None and citation.article_id in question.gold_article_ids:
                    strict = rank
        holding = sum(1 for c in shown_citations if pattern.search(c.passage))
        shown_text = answer.found or answer.hedged
        correct = shown_text and pattern.search(answer.answer) is not None
    return Scored(question, answer, strict, loose, correct, len(shown_citations), holding)


def _eval_question(
    record: object, where: str, number: int, *, need_answers: bool = True
) -> EvalQuestion:
    """The question a JSONL line's `record` holds; NewsbotError naming `where` if none.
    Without `need_answers` (an uncovered question), its `answers` may be left out."""
    question = record.get("question") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not isinstance(question, str) or not question.strip():
        raise NewsbotError(f"{where}: expected an object with a 'question'")
    answers = record.get("answers", None if need_answers else [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise NewsbotError(f"{where}: 'answers' must be a list of strings")
    day = record.get("date") or None
    if day is not None and (not isinstance(day, str) or normalise_date(day) is None):
        raise NewsbotError(f"{where}: 'date' must be a date such as 2024-01-05, not {day!r}")
    gold = record.get("gold_article_ids") or []
    if not isinstance(gold, list) or not all(isinstance(i, str | int) for i in gold):
        raise NewsbotError(f"{where}: 'gold_article_ids' must be a list of article ids")
    article = record.get("article_id")  # the natural questions' one gold article
    if article is not None and not isinstance(article, str | int):
        raise NewsbotError(f"{where}: 'article_id' must be an article id")
    if article is not None:
        gold = [*gold, article]
    named = record.get("id")
    if named is not None and not isinstance(named, str | int):
        raise NewsbotError(f"{where}: 'id' must be a string or a number")
    return EvalQuestion(
        id=str(named or number),
        question=question,
        answers=tuple(answers),
        gold_article_ids=frozenset(str(i) for i in gold),
        date=normalise_date(day) if day else None,
    )


def read_questions(path: Path, *, need_answers: bool = True) -> list[EvalQuestion]:
    """Questions from a JSONL file of `{"id"?, "question", "answers", "gold_article_ids"?,
    "date"?}` objects (the eval sets' format; the natural questions' `article_id`, their gold
    article, is read as one of `gold_article_ids`, and their other fields are ignored).

    Args:
        path: the JSONL file.
        need_answers: False for uncovered questions, which need no `answers`.

    Raises:
        NewsbotError: the file is missing or a line is not such an object.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NewsbotError(f"cannot read questions {path}: {exc.strerror or exc}") from exc
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        raise NewsbotError(
            f"{path}:{at}: not UTF-8 (byte 0x{data[exc.start]:02x}): save it as UTF-8"
        ) from exc
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NewsbotError(f"{where}: not JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise NewsbotError(f"{where}: not JSON (nested too deeply)") from exc
        except ValueError as exc:  # an integer too long to convert
            raise NewsbotError(f"{where}: not JSON ({str(exc).split(':')[0]})") from exc
        questions.append(_eval_question(record, where, number, need_answers=need_answers))
    if not questions:
        raise NewsbotError(f"no questions in {path}")
    return questions


def evaluate(
    questions: Sequence[EvalQuestion],
    ask: Callable[[EvalQuestion], Answer],
    *,
    uncovered: Sequence[EvalQuestion] = (),
    shown: int = SHOWN_SOURCES,
    mode: str = MODE_EXTRACTIVE,
    ranks: int = CITED_FOR_EVAL,
) -> EvalReport:
    """Ask every question (through `ask`) and score the answers.

    Args:
        questions: questions the indexed articles answer.
        ask: answers one question.
        uncovered: questions no indexed article answers (their answer articles were left
            out of the index): answering "not covered" is right for them.
        shown: the sources a user is shown (NEWSBOT_TOP_K).
        mode: how `ask` answers (`MODE_LLM`: a language model, whose figures are added).
        ranks: the passages each answer ranks (the `k` it is asked with): hit@k is
            reported for k up to it.
    """
    return EvalReport(
        [score(q, ask(q), shown=shown) for q in questions],
        [score(q, ask(q), shown=shown) for q in uncovered],
        mode,
        ranks,
    )
