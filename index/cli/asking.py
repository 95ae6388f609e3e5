"""`newsbot ask` and `newsbot chat`: questions put to the index, answers shown."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from index.cli.console import IndexDirOption, err, fail, load_settings, out, user_errors
from index.cli.render import render_answer
from index.errors import NewsbotError, QuestionError
from index.models.embeddings import load_embedder
from index.search.retrieval import Filters
from index.text import inert, question_text

TopKOption = Annotated[
    int | None,
    typer.Option(
        "--k", min=1, max=50, help="At most this many passages cited (default: NEWSBOT_TOP_K or 5)."
    ),
]


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
        source=source, since=iso_date(since, "--since"), until=iso_date(until, "--until")
    )
    default_day = iso_date(asked_on, "--asked-on")
    batch_items = _read_batch(batch) if batch is not None else []
    with user_errors():
        from index.newsbot import Newsbot

        bot = Newsbot(settings, load_embedder(settings, purpose="query"))
        bot.warm_up()  # latency_ms then measures the answer, not the model load
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
    """Ask questions one after another; a follow-up ("and Germany?") builds on the earlier ones.

    A follow-up is understood with the last NEWSBOT_CHAT_TURNS questions and answers.
    /reset forgets them; /quit (or Ctrl-D) leaves."""
    from index.answer.conversation import Conversation

    settings = load_settings(index_dir=index_dir, top_k=k)
    day = iso_date(asked_on, "--asked-on")
    with user_errors():
        from index.newsbot import Newsbot

        bot = Newsbot(settings, load_embedder(settings, purpose="query"))
        bot.warm_up()
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
        try:  # checked before any is answered: a batch is answered whole or not at all
            question_text(question)
        except QuestionError as exc:
            fail(f"{path}:{number}: {exc}")
        day = record.get("date")
        items.append((question, iso_date(day, f"{path}:{number} 'date'")))
    return items


def iso_date(value: Any, flag: str) -> str | None:
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
