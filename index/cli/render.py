"""What `newsbot` draws, apart from its commands: answers with their citations, the index
report and its progress bar, the status table, the eval figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from index.answer.types import SUPPORT, Answer, Copy
from index.build.reindex import IndexReport
from index.cli.console import err, out
from index.errors import ArticleError
from index.evaluation.report import EvalReport
from index.settings import Settings
from index.text import inert

STAGES = {"embed": "embedding", "store": "storing vectors"}
# Figures of `newsbot eval` that are counts, not shares.
COUNTS = frozenset({"claims_made"})


def render_answer(answer: Answer) -> None:
    """The answer with the answer itself (name, number, date) underlined, then its numbered
    sources, each with the sentence bearing on the answer highlighted."""
    text = Text(inert(answer.answer), style="bold")
    if answer.answer_span:
        text.stylize("underline yellow", *answer.answer_span)
    out.print(text)
    if not answer.citations:
        return
    out.print()
    for c in answer.citations:
        head = Text(f"[{c.n}] ", style="bold cyan")
        head.append(inert(c.title), style="bold")
        details = " · ".join(x for x in (c.source, c.published) if x)
        if details:
            head.append(f" — {inert(details)}")
        if c.role != SUPPORT:
            head.append(f" ({c.role})", style="italic")
        out.print(head)
        if c.url:
            out.print(Text(f"    {inert(c.url)}", style="blue underline"))
        if c.also_reported_by:
            out.print(Text("    also reported by ", style="italic") + copies(c.also_reported_by))
        quote = Text(inert(c.passage), style="dim")
        if c.highlight:
            quote.stylize("not dim bold yellow", *c.highlight)
        out.print(Text("    “") + quote + Text("”"))
        out.print()


def copies(others: Sequence[Copy]) -> Text:
    """The story's other copies: `Outlet · date (URL)`, comma-separated."""
    text = Text()
    for i, copy in enumerate(others):
        if i:
            text.append(", ")
        text.append(inert(" · ".join(x for x in (copy.source, copy.published) if x) or copy.title))
        if copy.url:
            text.append(" (")
            text.append(inert(copy.url), style="blue underline")
            text.append(")")
    return text


def print_problems(problems: list[ArticleError], label: str) -> None:
    """One line a problem: the file (and line) under the corpus, and why."""
    for problem in problems:
        err.print(f"{label} {escape(str(problem))}", highlight=False, soft_wrap=True)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) drawing a bar on stderr while it is used."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        # Off a terminal a bar is noise: stopping it would still print an empty line, before
        # the one line an error is.
        disable=not err.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        yield update
    finally:
        bar.stop()


def print_report(report: IndexReport, settings: Settings) -> None:
    """What a reindex changed: skipped files, then a table of counts, then the timing."""
    print_problems(report.problems, "[yellow]skipped[/]")
    table = Table(title=f"Indexed {settings.corpus_dir} → {settings.index_dir}", show_header=True)
    table.add_column("articles")
    table.add_column("count", justify="right")
    table.add_row("added", str(len(report.added)))
    table.add_row("updated", str(len(report.updated)))
    table.add_row("removed", str(len(report.removed)))
    table.add_row("unchanged (no model call)", str(report.unchanged))
    if report.repaired:
        table.add_row("repaired (vectors were missing)", str(len(report.repaired)))
    table.add_row("skipped files (could not read)", str(report.skipped_files))
    table.add_row("skipped records (bad JSON line or record)", str(report.skipped_records))
    if report.kept:
        table.add_row("kept as indexed before (file unreadable)", str(len(report.kept)))
    if report.copies:
        table.add_row(
            f"syndicated copies (of {report.stories} stories; each story cited once)",
            str(report.copies),
        )
    out.print(table)
    for line in report.segments_repaired:
        out.print(Text(f"Repaired {line}."))
    if report.vectors_restored:
        out.print("The vector store had lost this index's vectors: restored from the catalog.")
    if report.stories_grouped:
        out.print("Grouped the articles' syndicated copies into stories (no model call).")
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    out.print(
        f"{report.chunks_embedded} chunks embedded, {report.chunks_total} in the index, "
        f"{report.seconds:.1f} s ({rate:.1f} chunks/s overall)",
        highlight=False,
    )


def print_status(status: dict[str, Any]) -> None:
    """`newsbot status` as a table."""
    table = Table(title="newsbot index", show_header=False)
    for key, value in status.items():
        if key == "size_bytes":
            key, value = "size", f"{value / 1e6:.1f} MB"
        table.add_row(key.replace("_", " "), escape(str(value)))
    out.print(table)


def print_eval(result: EvalReport, title: str) -> None:
    """The figures, then the worst misses."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in result.figures().items():
        if name.endswith("_ms"):
            shown = f"{value:.0f} ms"
        elif name in COUNTS:
            shown = f"{value:.0f}"
        else:
            shown = f"{value:.3f}"
        table.add_row(name.replace("_", " "), shown)
    out.print(table)
    misses = result.worst_misses()
    if misses:
        out.print("[bold]Worst misses[/] (no strict hit in the cited passages, then late hits):")
    for s in misses:
        rank = f"hit at {s.strict_rank}" if s.strict_rank else "no hit"
        cited = s.answer.citations[0].title if s.answer.citations else "nothing cited"
        out.print(
            Text(f"- [{rank}] {s.question.question}\n", style="bold")
            + Text(f"    expected {' / '.join(s.question.answers)}; answered: ")
            + Text(s.answer.answer[:160], style="dim")
            + Text(f"\n    first source: {cited}")
        )
