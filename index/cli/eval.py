"""`newsbot eval`: its flags parsed, the evaluation run (`index.evaluation.run`), its figures
shown."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from index.answer.answerer import answer_mode
from index.answer.extractive import Extraction
from index.answer.types import MODE_LLM
from index.build.reindex import IndexReport
from index.cli.console import IndexDirOption, fail, load_settings, out, user_errors
from index.cli.render import print_eval, progress_bar
from index.evaluation.report import read_questions
from index.evaluation.run import EvalRun, run_eval
from index.search.ranking import Ranking, weight_names, with_overrides
from index.settings import Settings
from index.text import inert

EVAL_INDEX_DIR = ".newsbot-eval"


def eval_command(
    questions: Annotated[
        Path,
        typer.Option(
            "--questions",
            help='JSONL of {"question", "answers", "gold_article_ids" (or "article_id"), "date"}.',
        ),
    ],
    articles: Annotated[
        Path | None,
        typer.Option(
            "--articles",
            help="Index these articles first (a .jsonl.gz or a folder); an index that is "
            f"current is reused. Default index folder then: {EVAL_INDEX_DIR}.",
        ),
    ] = None,
    uncovered: Annotated[
        Path | None,
        typer.Option(
            "--uncovered",
            help="Also ask these questions, which no indexed article answers (same format, "
            "'answers' optional): 'not covered' is right for them. benchmarks/eval_uncovered.py "
            "makes such a set.",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure and answer here.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N questions.")
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help="Change one ranking or answer weight for this run, e.g. --set lead_weight=0 "
            "(repeatable; the names are the fields of Ranking in index/search/ranking.py and of "
            "Extraction in index/answer/extractive.py).",
        ),
    ] = None,
    mode: Annotated[
        Literal["extractive", "llm"] | None,
        typer.Option(
            "--mode",
            help="Which answer step answers: extractive (offline), or llm: the language model "
            "NEWSBOT_LLM names, every citation checked, the extractive one (with any --set "
            "weights) its fallback. Default: llm if NEWSBOT_LLM is set, else extractive.",
        ),
    ] = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Score answers on questions with known answers.

    Figures: hit@k, accuracy, not covered, hedged, wrong answers, sources with an answer, latency.
    And each reply kind apart: answered outright, right, useful, confidently wrong.
    With --mode llm, also the claims made, those dropped by each check, the fallbacks by cause.
    """

    if articles is not None and index_dir is None:
        index_dir = Path(EVAL_INDEX_DIR)
    settings = load_settings(index_dir=index_dir, corpus_dir=articles)
    llm = settings.llm.strip()
    answered_by = mode or answer_mode(settings)
    if answered_by == MODE_LLM and not llm:
        fail("--mode llm needs NEWSBOT_LLM, the model to ask (e.g. openai:gpt-4o-mini)")
    ranking, extraction = _weighted(settings, weights or [])
    with user_errors():
        wanted = read_questions(questions)[:limit]
        unanswerable = (
            read_questions(uncovered, need_answers=False)[:limit] if uncovered is not None else []
        )
        run = EvalRun(
            wanted,
            answered_by,
            uncovered=unanswerable,
            ranking=ranking,
            extraction=extraction,
            reindex_first=articles is not None,
        )
        with ExitStack() as drawing:
            progress = drawing.enter_context(progress_bar())

            def indexed(report: IndexReport) -> None:
                drawing.close()  # the bar goes once indexed, before the questions
                _print_indexed(settings, report)

            result = run_eval(settings, run, progress=progress, on_indexed=indexed)
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=1) + "\n")
    title = f"{result.count} questions from {questions.name}"
    if uncovered is not None:
        title += f", {len(result.uncovered)} uncovered from {uncovered.name}"
    if answered_by == MODE_LLM:
        title += f", answered by {escape(inert(llm))}"
    print_eval(result, title)


def _print_indexed(settings: Settings, report: IndexReport) -> None:
    """The one line saying what indexing the eval's articles did."""
    out.print(
        f"index {settings.index_dir}: {report.chunks_total} chunks, "
        f"{report.chunks_embedded} embedded now ({report.seconds:.0f} s)",
        highlight=False,
    )


def _weighted(settings: Settings, changes: list[str]) -> tuple[Ranking, Extraction]:
    """The ranking and answer weights of `settings`, with `--set NAME=VALUE` changes."""
    ranking, extraction = Ranking.from_settings(settings), Extraction.from_settings(settings)
    known = {*weight_names(ranking), *weight_names(extraction)}
    overrides: dict[str, float] = {}
    for change in changes:
        name, _, value = change.partition("=")
        if name.strip() not in known:
            fail(f"--set {change!r}: no weight {name.strip()!r}; known: {', '.join(sorted(known))}")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            fail(f"--set {change!r} wants a number, e.g. --set {name.strip()}=0")
    if overrides:
        shown = ", ".join(f"{k}={v:g}" for k, v in overrides.items())
        out.print(f"weights changed for this run: {shown}", highlight=False)
    return with_overrides(ranking, overrides), with_overrides(extraction, overrides)
