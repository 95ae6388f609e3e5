"""When the language model and the offline answer disagree: what users get under the rule
of issue 29 (a model that says nothing never replaces an outright offline answer) and
before it, for scripted model behaviours, on an eval set.

Each question is asked once of the index: the passages the model would be shown
(`NEWSBOT_TOP_K`) and the offline answer are kept. Then each behaviour's reply is turned into
the answer shown, by `index.answer.citations.answer_or_fallback` (the rule now) and by the
rule before (the model's "not covered" always shown; any reply with nothing verified, empty
ones included, the offline answer), and scored as `newsbot eval` scores:

    python benchmarks/eval_llm_disagreement.py --index-dir DEV_INDEX \\
        --questions ../shared/eval/natural/dev-covered.jsonl \\
        --uncovered ../shared/eval/natural/dev-uncovered.jsonl

Behaviours: the model always says "not covered"; it gives no claims; its claims all fail
the check (a quote in no passage); and one that quotes the sentence holding the answer
(the question's `evidence`, when a passage shown holds it), to count what the claim check
drops of good claims. Also the rule with a hedge kept over the model's "not covered" too
("new, hedges kept"), the alternative the rule did not take.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from index.answer.answerer import build_answerer
from index.answer.citations import (
    Claim,
    LlmAnswer,
    answer_or_fallback,
    check,
    find_quote,
    verified_answer,
)
from index.answer.types import (
    MODE_EXTRACTIVE,
    MODE_LLM,
    NOT_COVERED,
    NOTHING_VERIFIED,
    Answer,
    Answerer,
)
from index.evaluation.report import EvalQuestion, EvalReport, read_questions, score
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.records import Hit
from index.settings import Settings

FIGURES = (
    "outright",
    "right",
    "useful",
    "confidently_wrong",
    "not_covered",
    "uncovered_not_covered",
    "uncovered_outright",
    "wrong_answers",
)


@dataclass(frozen=True)
class Asked:
    """A question, the passages the model would be shown, and the offline answer."""

    question: EvalQuestion
    hits: list[Hit]
    offline: Answer
    evidence: str | None


class Keeping:
    """The offline answer step, keeping the passages and answer of the last question."""

    def __init__(self, offline: Answerer) -> None:
        self.offline = offline
        self.last: tuple[list[Hit], Answer] | None = None

    def warm_up(self) -> None:
        warm = getattr(self.offline, "warm_up", None)
        if warm is not None:
            warm()

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        answer = self.offline.compose(question, hits, limit=limit)
        self.last = (list(hits[: limit or len(hits)]), answer)
        return answer


def not_covered(asked: Asked) -> LlmAnswer:
    return LlmAnswer(not_covered=True, claims=[])


def no_claims(asked: Asked) -> LlmAnswer:
    return LlmAnswer(not_covered=False, claims=[])


def all_fail(asked: Asked) -> LlmAnswer:
    invented = "the passages never say these words at all"
    return LlmAnswer(
        not_covered=False,
        claims=[Claim(text="An invented sentence.", sources=[1], quote=invented)],
    )


def quotes_evidence(asked: Asked) -> LlmAnswer:
    """The sentence holding the answer, quoted from the first passage shown that holds it."""
    for n, hit in enumerate(asked.hits, start=1):
        if asked.evidence and find_quote(asked.evidence, hit.passage.chunk.text):
            claim = Claim(text=asked.evidence, sources=[n], quote=asked.evidence)
            return LlmAnswer(not_covered=False, claims=[claim])
    return LlmAnswer(not_covered=True, claims=[])


WINDOW = 5  # words quoted either side of the answer


def quotes_around_the_answer(asked: Asked) -> LlmAnswer:
    """The sentence holding the answer as the claim, quoting only the answer and `WINDOW`
    words either side of it: a figure elsewhere in the sentence is then not in the quote."""
    whole = quotes_evidence(asked)
    if whole.not_covered or asked.evidence is None:
        return whole
    words = asked.evidence.split()
    lowered = [w.lower() for w in words]
    first = asked.question.answers[0].split()[0].lower() if asked.question.answers else ""
    at = next((i for i, w in enumerate(lowered) if first and first in w), len(words) // 2)
    size = len(asked.question.answers[0].split()) if asked.question.answers else 1
    quote = " ".join(words[max(0, at - WINDOW) : at + size + WINDOW])
    claim = whole.claims[0]
    return LlmAnswer(
        not_covered=False, claims=[Claim(text=claim.text, sources=claim.sources, quote=quote)]
    )


BEHAVIOURS: dict[str, Callable[[Asked], LlmAnswer]] = {
    "always not covered": not_covered,
    "empty claims": no_claims,
    "claims all fail": all_fail,
    "quotes the evidence": quotes_evidence,
    "quotes around answer": quotes_around_the_answer,
}


def old_rule(question: str, reply: LlmAnswer, hits: Sequence[Hit], offline: Answer) -> Answer:
    """The rule before issue 29 (commit d7a4189): "not covered" always shown; the offline
    answer when nothing verified (no claim check then: the quote check only)."""
    if reply.not_covered:
        return Answer(question, False, NOT_COVERED, mode=MODE_LLM)
    checked = check(reply, hits, claims=False)
    shown = verified_answer(question, checked, hits)
    if shown is not None:
        return shown
    return replace(offline, claims=checked.made, fallback=NOTHING_VERIFIED)


def hedges_kept(question: str, reply: LlmAnswer, hits: Sequence[Hit], offline: Answer) -> Answer:
    """The rule now, with an offline hedge kept over the model's "not covered" too."""
    if reply.not_covered and offline.hedged:
        return offline
    return answer_or_fallback(question, reply, hits, offline)


RULES = {"old": old_rule, "new": answer_or_fallback, "new, hedges kept": hedges_kept}


def ask_all(
    settings: Settings, questions: Sequence[EvalQuestion], evidence: dict[str, str]
) -> list[Asked]:
    keeping = Keeping(build_answerer(settings, mode=MODE_EXTRACTIVE))
    bot = Newsbot(settings, load_embedder(settings, purpose="query"), answerer=keeping)
    bot.warm_up()
    asked = []
    try:
        for q in questions:
            bot.ask(q.question, k=settings.top_k, asked_on=q.date)
            assert keeping.last is not None
            hits, offline = keeping.last
            asked.append(Asked(q, hits, offline, evidence.get(q.id)))
    finally:
        bot.close()
    return asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--uncovered", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    settings = Settings(index_dir=args.index_dir)
    covered = read_questions(args.questions)[: args.limit]
    uncovered = (
        read_questions(args.uncovered, need_answers=False)[: args.limit] if args.uncovered else []
    )
    evidence = {}  # the natural questions' sentence holding the answer, by id
    for line in args.questions.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if "evidence" in record:
            evidence[str(record["id"])] = record["evidence"]
    asked = ask_all(settings, covered, evidence)
    asked_uncovered = ask_all(settings, uncovered, evidence)
    offline = EvalReport(
        [score(a.question, a.offline, shown=settings.top_k) for a in asked],
        [score(a.question, a.offline, shown=settings.top_k) for a in asked_uncovered],
    ).figures()
    results: dict[str, Any] = {"offline": {f: offline[f] for f in FIGURES}}
    print(f"{len(asked)} covered, {len(asked_uncovered)} uncovered questions")
    print(f"{'behaviour':24} {'rule':17} " + " ".join(f"{f[:12]:>12}" for f in FIGURES))
    print(f"{'(no model)':24} {'offline':17} " + " ".join(f"{offline[f]:12.3f}" for f in FIGURES))
    for name, behave in BEHAVIOURS.items():
        for rule_name, rule in RULES.items():
            shown = [rule(a.question.question, behave(a), a.hits, a.offline) for a in asked]
            shown_unc = [
                rule(a.question.question, behave(a), a.hits, a.offline) for a in asked_uncovered
            ]
            report = EvalReport(
                [
                    score(a.question, s, shown=settings.top_k)
                    for a, s in zip(asked, shown, strict=True)
                ],
                [
                    score(a.question, s, shown=settings.top_k)
                    for a, s in zip(asked_uncovered, shown_unc, strict=True)
                ],
                MODE_LLM,
            )
            figures = report.figures()
            row = {f: figures[f] for f in FIGURES}
            row |= {
                k: figures[k]
                for k in ("claims_made", "claims_verified", "claims_dropped_by_claim", "fallback")
            }
            results[f"{name} / {rule_name}"] = row
            print(f"{name:24} {rule_name:17} " + " ".join(f"{row[f]:12.3f}" for f in FIGURES))
        print()
    for name in ("quotes the evidence", "quotes around answer"):
        replies = [BEHAVIOURS[name](a) for a in asked]
        made = [r for r in replies if not r.not_covered]
        drops: dict[str, int] = {}
        for a, r in zip(asked, replies, strict=True):
            if not r.not_covered:
                for d in check(r, a.hits, a.question.question).dropped:
                    drops[d.reason] = drops.get(d.reason, 0) + 1
        print(f"{name}: {len(made)} claims (of {len(asked)} questions); dropped: {drops or 'none'}")
        results[f"{name} claims"] = {"made": len(made), "dropped": drops}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
