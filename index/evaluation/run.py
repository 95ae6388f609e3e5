"""Running an evaluation: the answer step built, the articles indexed if asked, every
question asked of the index and scored (`newsbot eval` parses its flags and shows this)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.answer.answerer import build_answerer
from index.answer.extractive import Extraction
from index.answer.types import MODE_LLM
from index.build.reindex import IndexReport, reindex
from index.evaluation.report import CITED_FOR_EVAL, EvalQuestion, EvalReport, evaluate
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.search.ranking import Ranking
from index.settings import Settings

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvalRun:
    """What to evaluate: the questions, and how the answers are made.

    `mode` is the answer step's (`MODE_EXTRACTIVE`, `MODE_LLM`); `ranking` and `extraction`
    the weights (default: the settings'); `reindex_first` indexes the corpus folder first.
    """

    questions: Sequence[EvalQuestion]
    mode: str
    uncovered: Sequence[EvalQuestion] = ()
    ranking: Ranking | None = None
    extraction: Extraction | None = None
    reindex_first: bool = False


def run_eval(
    settings: Settings,
    run: EvalRun,
    *,
    progress: Progress | None = None,
    on_indexed: Callable[[IndexReport], None] | None = None,
) -> EvalReport:
    """Ask `run`'s questions of the index in `settings.index_dir` and score the answers.

    Args:
        settings: the index, the corpus (with `run.reindex_first`), the models.
        run: the questions and the answer step.
        progress: told how reindexing goes (stage, done, total), if it reindexes.
        on_indexed: told what reindexing did, before any question is asked.

    Raises:
        NewsbotError: the model cannot be loaded, the index is missing or does not match.
    """
    # The answer step first: a missing provider package stops the run before any indexing.
    answerer = build_answerer(settings, mode=run.mode, extraction=run.extraction)
    if run.reindex_first:
        report = reindex(settings, load_embedder(settings), progress=progress)
        if on_indexed is not None:
            on_indexed(report)
    bot = Newsbot(
        settings,
        load_embedder(settings, purpose="query"),
        answerer=answerer,
        ranking=run.ranking,
    )
    bot.warm_up()
    # The offline answer step ranks CITED_FOR_EVAL passages, so that hit@10 is measured
    # (a user is shown the first NEWSBOT_TOP_K); the model is shown NEWSBOT_TOP_K, as in
    # `newsbot ask`, so that its claims, fallbacks and latency are those users get.
    k = settings.top_k if run.mode == MODE_LLM else CITED_FOR_EVAL
    try:
        return evaluate(
            run.questions,
            lambda q: bot.ask(q.question, k=k, asked_on=q.date),
            uncovered=run.uncovered,
            shown=settings.top_k,
            mode=run.mode,
            ranks=k,
        )
    finally:
        bot.close()
