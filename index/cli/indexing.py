"""`newsbot index` and `newsbot status`: building the index, and what it holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from index.build.reindex import reindex
from index.cli.console import IndexDirOption, load_settings, out, user_errors
from index.cli.render import print_problems, print_report, print_status, progress_bar
from index.errors import CorpusProblemsError, IndexBusyError
from index.models.embeddings import load_embedder
from index.settings import Settings

CorpusOption = Annotated[
    Path | None,
    typer.Option("--corpus", help="Corpus folder (default: NEWSBOT_CORPUS_DIR or corpus)."),
]


def index_command(
    corpus: CorpusOption = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Build the index anew; the old one answers until the new one is done.",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail, changing nothing, if any corpus file or record cannot be read.",
        ),
    ] = False,
    index_dir: IndexDirOption = None,
) -> None:
    """Index the corpus: embed new and changed articles, drop removed ones."""
    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    run_index(settings, rebuild=rebuild, strict=strict)


def run_index(
    settings: Settings,
    *,
    rebuild: bool = False,
    strict: bool = False,
    if_busy: str = "",
    brief: bool = False,
) -> None:
    """Reindex with a progress bar, then print what changed: a table, or with `brief` one
    line if nothing did. `if_busy` is said after the error if another index is running."""
    with user_errors():
        embedder = load_embedder(settings)
        try:
            with progress_bar() as progress:
                report = reindex(
                    settings, embedder, rebuild=rebuild, strict=strict, progress=progress
                )
        except CorpusProblemsError as exc:
            print_problems(exc.problems, "[red]problem[/]")
            raise
        except IndexBusyError as exc:
            if if_busy:
                raise IndexBusyError(f"{exc}; {if_busy}") from exc
            raise
    if brief and not (report.changed or report.problems or report.repaired or report.kept):
        out.print(f"index up to date: {report.chunks_total} chunks", highlight=False)
        return
    print_report(report, settings)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    index_dir: IndexDirOption = None,
) -> None:
    """Show what the index holds and what built it."""
    settings = load_settings(index_dir=index_dir)
    with user_errors():
        from index.newsbot import Newsbot

        bot = Newsbot(settings, load_embedder(settings, purpose="query"))
        bot.verify()
        status = bot.status()
    if as_json:
        sys.stdout.write(json.dumps(status.to_dict()) + "\n")
        return
    print_status(status.to_dict())
