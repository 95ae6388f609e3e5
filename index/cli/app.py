"""The `newsbot` command line: a thin adapter that parses flags, calls the core, renders.

It names no adapter: `newsbot bot` and any other adapter's commands are added through the
`newsbot.commands` entry points (`index.cli.plugins`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from index.answer.answer_model import AnswerModel
from index.answer.extractive import Extraction, ExtractiveAnswerer
from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, SUPPORT, Answer, Answerer, Copy
from index.build.reindex import IndexReport, reindex
from index.cli.console import IndexDirOption, err, fail, load_settings, out, user_errors
from index.cli.plugins import register_commands
from index.errors import ArticleError, CorpusProblemsError, NewsbotError
from index.evaluation.report import CITED_FOR_EVAL, EvalReport, evaluate, read_questions
from index.models.embeddings import load_embedder
from index.search.ranking import Ranking, weight_names, with_overrides
from index.search.retrieval import Filters
from index.settings import Settings
from index.text import inert

app = typer.Typer(
    help="newsbot: answers questions about your news articles, citing the passages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EVAL_INDEX_DIR = ".newsbot-eval"
TopKOption = Annotated[
    int | None,
    typer.Option(
        "--k", min=1, max=50, help="At most this many passages cited (default: NEWSBOT_TOP_K or 5)."
    ),
]
# Figures of `newsbot eval` that are counts, not shares.
COUNTS = frozenset({"claims_made"})


@app.command("index")
def index_command(
    corpus: Annotated[
        Path | None,
        typer.Option("--corpus", help="Corpus folder (default: NEWSBOT_CORPUS_DIR or corpus)."),
    ] = None,
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
    _index(settings, rebuild=rebuild, strict=strict)


def _index(settings: Settings, *, rebuild: bool = False, strict: bool = False) -> None:
    """Reindex with a progress bar, then print what changed."""
    with user_errors():
        embedder = load_embedder(settings)
        try:
            with _progress_bar() as progress:
                report = reindex(
                    settings, embedder, rebuild=rebuild, strict=strict, progress=progress
                )
        except CorpusProblemsError as exc:
            _print_problems(exc.problems, "[red]problem[/]")
            raise
    _print_report(report, settings)


@app.command("add")
def add_command(
    urls: Annotated[
        list[str],
        typer.Argument(
            metavar="URL",
            help="Web addresses (http or https) of news articles.",
            show_default=False,
        ),
    ],
    no_index: Annotated[
        bool,
        typer.Option("--no-index", help="Only write the articles into the corpus; index later."),
    ] = False,
    corpus: Annotated[
        Path | None,
        typer.Option("--corpus", help="Corpus folder (default: NEWSBOT_CORPUS_DIR or corpus)."),
    ] = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Fetch articles from the web into the corpus (web/HOST/DATE-TITLE.md), then index.

    An address added before is rewritten only if its text changed. Each page that fails is
    one line; the others are added, and the exit status is 1."""
    from index.ingest.web.add import Added, add_pages

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)

    def show(result: Added) -> None:
        url = inert(result.url)
        if result.saved is None:
            err.print(Text(f"failed {url}: {inert(result.reason or '')}"), soft_wrap=True)
            return
        where = result.path.relative_to(settings.corpus_dir) if result.path else ""
        out.print(Text(f"{result.saved.value} {url} → {where}"), soft_wrap=True)

    with user_errors():
        report = add_pages(settings, urls, on_result=show)
    if not no_index and len(report.failed) < len(report.results):
        _index(settings)
    if report.failed:
        raise typer.Exit(1)


feeds_app = typer.Typer(
    help="The feeds `newsbot sync` polls (RSS, Atom), listed in the corpus's feeds.yaml.",
    no_args_is_help=True,
)
app.add_typer(feeds_app, name="feeds")
CorpusOption = Annotated[
    Path | None,
    typer.Option("--corpus", help="Corpus folder (default: NEWSBOT_CORPUS_DIR or corpus)."),
]


@feeds_app.command("add")
def feeds_add_command(
    url: Annotated[str, typer.Argument(metavar="URL", help="The feed's address (RSS or Atom).")],
    name: Annotated[
        str | None, typer.Option("--name", help="What to call it in `feeds list`.")
    ] = None,
    corpus: CorpusOption = None,
) -> None:
    """Follow a feed: check that it is one, then add it to feeds.yaml (`newsbot sync` polls it)."""
    from index.ingest.web.feedlist import follow
    from index.ingest.web.fetcher import FetchPolicy

    settings = load_settings(corpus_dir=corpus)
    with user_errors():
        feed, parsed = follow(settings.corpus_dir, url, name, FetchPolicy.from_settings(settings))
    title = f"{parsed.title}: " if parsed.title else ""
    plural = "entry" if len(parsed.entries) == 1 else "entries"
    out.print(
        Text(
            f"following {inert(feed.url)} ({inert(title)}{len(parsed.entries)} {plural}); "
            "`newsbot sync` fetches them"
        ),
        soft_wrap=True,
    )


@feeds_app.command("list")
def feeds_list_command(corpus: CorpusOption = None, index_dir: IndexDirOption = None) -> None:
    """List the feeds followed, with when each was last fetched and what came of it."""
    from index.ingest.web.feed_state import FeedState
    from index.ingest.web.feedlist import FeedList

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    with user_errors():
        feeds = FeedList(settings.corpus_dir).feeds()
    if not feeds:
        out.print("No feeds yet: `newsbot feeds add URL` follows one.")
        return
    state = FeedState(settings.index_dir)
    for feed in feeds:
        status = state.get(feed.url)
        name = f"{feed.name}: " if feed.name else ""
        last = (
            f"last fetched {status.checked.replace('T', ' ').rstrip('Z')} UTC: {status.outcome}"
            if status.checked
            else "not fetched yet"
        )
        out.print(Text(inert(f"{name}{feed.url} ({last})")), soft_wrap=True)


@feeds_app.command("remove")
def feeds_remove_command(
    feed: Annotated[str, typer.Argument(metavar="URL|NAME", help="The feed's address or name.")],
    corpus: CorpusOption = None,
) -> None:
    """Stop following a feed (its articles stay in the corpus)."""
    from index.ingest.web.feedlist import FeedList

    settings = load_settings(corpus_dir=corpus)
    with user_errors():
        removed = FeedList(settings.corpus_dir).remove(feed)
    out.print(Text(f"removed {inert(removed.label)}"), soft_wrap=True)


@feeds_app.command("discover")
def feeds_discover_command(
    site: Annotated[str, typer.Argument(metavar="SITE", help="A site's (or a page's) address.")],
) -> None:
    """Find the feeds a site offers (each checked to be a feed); follow one with `feeds add`."""
    from index.ingest.web.discover import discover_feeds
    from index.ingest.web.fetcher import FetchPolicy

    settings = load_settings()
    with user_errors():
        found = discover_feeds(site, FetchPolicy.from_settings(settings))
    for feed in found:
        title = f"{feed.title}, " if feed.title else ""
        plural = "entry" if feed.entries == 1 else "entries"
        out.print(Text(inert(f"{feed.url} ({title}{feed.entries} {plural})")), soft_wrap=True)


@app.command("sync")
def sync_command(
    no_index: Annotated[
        bool,
        typer.Option("--no-index", help="Only write the articles into the corpus; index later."),
    ] = False,
    corpus: CorpusOption = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Poll every feed (`newsbot feeds`), write new entries' articles to the corpus, index.

    An unchanged feed costs one conditional request, an entry already in the corpus none.
    With NEWSBOT_MAX_AGE_DAYS, older fetched articles are deleted. Each feed or page that
    fails is one line; the others are synced, and the exit status is 1."""
    from index.ingest.web.sync import sync_feeds

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    with user_errors():
        report = sync_feeds(settings, on_event=_show_sync_event(settings))
    if report.feeds:
        out.print(_sync_summary(report), soft_wrap=True, highlight=False)
    else:
        out.print("No feeds to sync: `newsbot feeds add URL` follows one.")
    if report.changed and not no_index:
        _index(settings)
    if report.failures:
        raise typer.Exit(1)


def _show_sync_event(settings: Settings) -> Callable[[Any], None]:
    from index.ingest.web.add import Added
    from index.ingest.web.retention import Pruned
    from index.ingest.web.sync import Polled, corpus_path

    def show(event: Any) -> None:
        if isinstance(event, Polled):
            if event.failed:
                line = f"failed feed {inert(event.feed.url)}: {inert(event.summary)}"
                err.print(Text(line), soft_wrap=True)
            else:
                out.print(Text(f"feed {inert(event.feed.label)}: {event.summary}"), soft_wrap=True)
        elif isinstance(event, Added):
            if event.saved is None:
                line = f"failed {inert(event.url)}: {inert(event.reason or '')}"
                err.print(Text(line), soft_wrap=True)
            else:
                where = corpus_path(settings, event.path)
                out.print(Text(f"{event.saved.value} {inert(event.url)} → {where}"), soft_wrap=True)
        elif isinstance(event, Pruned):
            where = corpus_path(settings, event.path)
            line = f"pruned {where}: published {event.dated}, older than NEWSBOT_MAX_AGE_DAYS"
            out.print(Text(inert(line)), soft_wrap=True)
        else:
            out.print(Text(f"skipped {inert(event.url)}: {inert(event.reason)}"), soft_wrap=True)

    return show


def _sync_summary(report: Any) -> str:
    from index.ingest.web.folder import Saved

    feeds = len(report.feeds)
    parts = [
        f"{report.count(Saved.ADDED)} added",
        f"{report.count(Saved.UPDATED)} updated",
        f"{report.known} already in the corpus",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    if report.pruned:
        parts.append(f"{len(report.pruned)} pruned")
    if report.failures:
        parts.append(f"{report.failures} failed")
    return f"synced {feeds} feed{'s' if feeds != 1 else ''}: {', '.join(parts)}"


def _print_problems(problems: list[ArticleError], label: str) -> None:
    """One line a problem: the file (and line) under the corpus, and why."""
    for problem in problems:
        err.print(f"{label} {escape(str(problem))}", highlight=False, soft_wrap=True)


STAGES = {"embed": "embedding", "store": "storing vectors"}


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
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


def _print_report(report: IndexReport, settings: Settings) -> None:
    _print_problems(report.problems, "[yellow]skipped[/]")
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


@app.command("ask")
def ask_command(
    question: Annotated[
        str | None, typer.Argument(help="The question, in quotes (or use --batch).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch",
            help='Ask every {"question", "date"?} line of this JSONL file ("-": stdin); '
            "prints one --json object a line.",
        ),
    ] = None,
    asked_on: Annotated[
        str | None,
        typer.Option(
            "--asked-on",
            help="When the question was asked (YYYY-MM-DD; default today): "
            "articles published later are not cited, and those published shortly before "
            "rank higher.",
        ),
    ] = None,
    k: TopKOption = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only articles from this outlet.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only articles published on/after YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only articles published on/before YYYY-MM-DD.")
    ] = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Answer a question from the indexed articles, with numbered sources."""
    if (question is None) == (batch is None):
        fail("give one question, or --batch FILE.jsonl (not both)")
    settings = load_settings(index_dir=index_dir, top_k=k)
    filters = Filters(
        source=source, since=_iso_date(since, "--since"), until=_iso_date(until, "--until")
    )
    default_day = _iso_date(asked_on, "--asked-on")
    batch_items = _read_batch(batch) if batch is not None else []
    with user_errors():
        from index.newsbot import Newsbot

        bot = Newsbot(settings, load_embedder(settings, purpose="query"))
        bot.embedder.warm_up()  # latency_ms then measures the answer, not the model load
        if batch is not None:
            for text, day in batch_items:
                answer = bot.ask(
                    text, k=settings.top_k, filters=filters or None, asked_on=day or default_day
                )
                sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            return
        assert question is not None
        answer = bot.ask(question, k=settings.top_k, filters=filters or None, asked_on=default_day)
    if as_json:
        sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
    else:
        render_answer(answer)


CHAT_HELP = (
    'Ask a question, then follow-ups ("and Germany?"): they are understood with the '
    "conversation so far. /reset forgets it; /quit (or Ctrl-D) leaves."
)
CHAT_QUIT = {"/quit", "/exit", "/q"}


@app.command("chat")
def chat_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per answer.")
    ] = False,
    asked_on: Annotated[
        str | None,
        typer.Option(
            "--asked-on", help="When the questions are asked (YYYY-MM-DD; default today)."
        ),
    ] = None,
    k: TopKOption = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Ask questions one after another: follow-ups ("and Germany?") are understood with the
    earlier questions and answers (the last NEWSBOT_CHAT_TURNS); /reset forgets them."""
    from index.answer.conversation import Conversation

    settings = load_settings(index_dir=index_dir, top_k=k)
    day = _iso_date(asked_on, "--asked-on")
    with user_errors():
        from index.newsbot import Newsbot

        bot = Newsbot(settings, load_embedder(settings, purpose="query"))
        bot.embedder.warm_up()
    conversation = Conversation(settings.chat_turns)
    interactive = sys.stdin.isatty()
    if interactive:
        out.print(CHAT_HELP, style="dim", highlight=False)
    for line in _chat_lines(interactive):
        text = line.strip()
        command = text.lower()
        if not text:
            continue
        if command in CHAT_QUIT:
            break
        if command == "/reset":
            conversation.reset()
            err.print("Conversation cleared: the next question stands on its own.", style="dim")
            continue
        if command.startswith("/") and " " not in command:
            err.print(f"unknown command {inert(text)}: {CHAT_HELP}", highlight=False)
            continue
        try:
            answer = bot.ask(text, k=settings.top_k, asked_on=day, history=conversation.history)
        except NewsbotError as exc:  # this question fails; the conversation goes on
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            continue
        conversation.add(answer.question, answer.answer)
        if as_json:
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            continue
        if answer.follow_up is not None:
            out.print(Text(f"({inert(answer.question)})", style="dim italic"))
        render_answer(answer)


def _chat_lines(interactive: bool) -> Iterator[str]:
    """The lines typed (with line editing), or read from standard input (bytes that are not
    UTF-8 become U+FFFD)."""
    if not interactive:
        for raw in sys.stdin.buffer:
            yield raw.decode("utf-8", "replace")
        return
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    while True:
        try:
            yield input("> ")
        except (EOFError, KeyboardInterrupt):
            out.print()
            return


def _read_batch(path: Path) -> list[tuple[str, str | None]]:
    """(question, asked-on date) pairs from a JSONL file; any bad line fails the whole run.

    Bytes that are not UTF-8 become U+FFFD, as in a question given as an argument.
    """
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    items: list[tuple[str, str | None]] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{path}:{number}: not JSON ({exc.msg})")
        except RecursionError:
            fail(f"{path}:{number}: not JSON (nested too deeply)")
        except ValueError as exc:  # an integer too long to convert
            fail(f"{path}:{number}: not JSON ({str(exc).split(':')[0]})")
        question = record.get("question") if isinstance(record, dict) else None
        if not isinstance(question, str) or not question.strip():
            fail(f"{path}:{number}: expected an object with a non-empty 'question'")
        day = record.get("date")
        items.append((question, _iso_date(day, f"{path}:{number} 'date'")))
    return items


@app.command("eval")
def eval_command(
    questions: Annotated[
        Path,
        typer.Option(
            "--questions", help='JSONL of {"question", "answers", "gold_article_ids", "date"}.'
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
            help="Also ask these questions, which no indexed article answers (same format): "
            "'not covered' is right for them. benchmarks/eval_uncovered.py makes such a set.",
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
    """Score answers on questions with known answers: hit@k, accuracy, not covered, hedged,
    wrong answers, sources holding the answer, latency; with a language model (--mode llm),
    also the claims it made, the share verified and how often the offline answer was given."""

    if articles is not None and index_dir is None:
        index_dir = Path(EVAL_INDEX_DIR)
    settings = load_settings(index_dir=index_dir, corpus_dir=articles)
    llm = settings.llm.strip()
    answered_by = mode or (MODE_LLM if llm else MODE_EXTRACTIVE)
    if answered_by == MODE_LLM and not llm:
        fail("--mode llm needs NEWSBOT_LLM, the model to ask (e.g. openai:gpt-4o-mini)")
    ranking, extraction = _weighted(settings, weights or [])
    with user_errors():
        wanted = read_questions(questions)[:limit]
        unanswerable = read_questions(uncovered)[:limit] if uncovered is not None else []
        # The model first: a missing provider package stops the run before any indexing.
        answerer: Answerer = ExtractiveAnswerer(extraction, AnswerModel.load(settings.answer_model))
        if answered_by == MODE_LLM:
            from index.answer.llm import LlmAnswerer  # LangChain only when used
            from index.models.chat import load_chat_model

            model = load_chat_model(settings)
            assert model is not None
            answerer = LlmAnswerer(model, answerer, timeout=settings.llm_timeout)
        if articles is not None:
            with _progress_bar() as progress:
                report = reindex(settings, load_embedder(settings), progress=progress)
            out.print(
                f"index {settings.index_dir}: {report.chunks_total} chunks, "
                f"{report.chunks_embedded} embedded now ({report.seconds:.0f} s)",
                highlight=False,
            )
        from index.newsbot import Newsbot

        bot = Newsbot(
            settings,
            load_embedder(settings, purpose="query"),
            answerer=answerer,
            ranking=ranking,
        )
        bot.embedder.warm_up()
        # The offline answer step ranks CITED_FOR_EVAL passages, so that hit@10 is measured
        # (a user is shown the first NEWSBOT_TOP_K); the model is shown NEWSBOT_TOP_K, as in
        # `newsbot ask`, so that its claims, fallbacks and latency are those users get.
        k = settings.top_k if answered_by == MODE_LLM else CITED_FOR_EVAL
        result = evaluate(
            wanted,
            lambda q: bot.ask(q.question, k=k, asked_on=q.date),
            uncovered=unanswerable,
            shown=settings.top_k,
            mode=answered_by,
            ranks=k,
        )
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=1) + "\n")
    title = f"{result.count} questions from {questions.name}"
    if uncovered is not None:
        title += f", {len(result.uncovered)} uncovered from {uncovered.name}"
    if answered_by == MODE_LLM:
        title += f", answered by {escape(inert(llm))}"
    _print_eval(result, title)


def _print_eval(result: EvalReport, title: str) -> None:
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


def _iso_date(value: Any, flag: str) -> str | None:
    """`value` (a flag's, or a --batch line's) as YYYY-MM-DD; None if not given."""
    if value is None:
        return None
    from index.ingest.corpus.metadata import normalise_date

    iso = normalise_date(value)
    if iso is None:
        # A --batch line's 'date' may be any JSON value: name a non-string by its kind only.
        shown = repr(value) if isinstance(value, str) else f"a JSON {type(value).__name__}"
        fail(f"{flag} wants a date such as 2024-11-17, not {shown}")
    return iso


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
            out.print(Text("    also reported by ", style="italic") + _copies(c.also_reported_by))
        quote = Text(inert(c.passage), style="dim")
        if c.highlight:
            quote.stylize("not dim bold yellow", *c.highlight)
        out.print(Text("    “") + quote + Text("”"))
        out.print()


def _copies(copies: Sequence[Copy]) -> Text:
    """The story's other copies: `Outlet · date (URL)`, comma-separated."""
    text = Text()
    for i, copy in enumerate(copies):
        if i:
            text.append(", ")
        text.append(inert(" · ".join(x for x in (copy.source, copy.published) if x) or copy.title))
        if copy.url:
            text.append(" (")
            text.append(inert(copy.url), style="blue underline")
            text.append(")")
    return text


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    index_dir: IndexDirOption = None,
) -> None:
    """Show what the index holds and what built it."""
    settings = load_settings(index_dir=index_dir)
    with user_errors():
        from index.newsbot import Newsbot

        status = Newsbot(settings, load_embedder(settings, purpose="query")).status()
    if as_json:
        sys.stdout.write(json.dumps(status.to_dict()) + "\n")
        return
    table = Table(title="newsbot index", show_header=False)
    for key, value in status.to_dict().items():
        if key == "size_bytes":
            key, value = "size", f"{value / 1e6:.1f} MB"
        table.add_row(key.replace("_", " "), escape(str(value)))
    out.print(table)


register_commands(app)  # the adapters' own commands (`newsbot bot`, ...), if installed


def main() -> None:
    """Console-script entry point."""
    app()
