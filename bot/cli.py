"""`newsbot bot` and `newsbot feedback`: the Discord adapter's commands, added through the
`newsbot.commands` entry point (see `index.cli.plugins`). Discord itself is imported only when
`newsbot bot` runs, and it is an extra (`pip install 'newsbot[discord]'`): `newsbot feedback`
works without it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bot.feedback import FeedbackLog
from bot.settings import BotSettings
from index.cli.console import Command, IndexDirOption, fail, load_settings, out, user_errors
from index.text import inert

DISCORD_MISSING = "newsbot bot needs discord.py, an extra: pip install 'newsbot[discord]'"


def bot_runner() -> Callable[[BotSettings], None]:
    """`bot.app.run`; without discord.py, one line that says how to install it."""
    try:
        from bot.app import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "discord":
            raise
        fail(DISCORD_MISSING)
    return run


def register_commands(app: typer.Typer) -> None:
    """Add `newsbot bot` and `newsbot feedback` to the `newsbot` command line."""

    @app.command("bot", cls=Command)
    def bot_command(index_dir: IndexDirOption = None) -> None:
        """Run the Discord bot (needs DISCORD_TOKEN in .env); Ctrl+C stops it.

        With FEEDS_SYNC_MINUTES set, it also syncs the feeds and reindexes that often.
        """
        settings = load_settings(index_dir=index_dir)
        with user_errors():
            settings = BotSettings.read().overridden(index_dir=index_dir)
            bot_runner()(settings)

    @app.command("feedback", cls=Command)
    def feedback_command(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object a line.")
        ] = False,
        vote: Annotated[
            str | None, typer.Option("--vote", help="Only 'up' or only 'down' votes.")
        ] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Newest this many votes.")] = 50,
        index_dir: IndexDirOption = None,
    ) -> None:
        """List the 👍/👎 votes people gave the bot's answers, newest first."""
        settings = load_settings(index_dir=index_dir)
        if vote not in (None, "up", "down"):
            fail(f"--vote wants 'up' or 'down', not {vote!r}")
        log = FeedbackLog.existing(settings.index_dir)
        entries = log.entries(vote=vote, limit=limit) if log else []  # type: ignore[arg-type]
        if as_json:
            for entry in entries:
                sys.stdout.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
            return
        if not entries:
            out.print(f"No feedback yet in {settings.index_dir}.")
            return
        table = Table(title=f"Feedback in {settings.index_dir} (newest first)")
        for column in ("time (UTC)", "vote", "user", "question", "answer", "sources"):
            table.add_column(column, overflow="fold")
        for e in entries:
            sources = ", ".join(f"[{s['n']}] {s['source'] or s['title']}" for s in e.sources)
            table.add_row(
                e.voted_at[:19].replace("T", " "),
                "👍" if e.vote == "up" else "👎",
                str(e.user_id),
                escape(inert(e.question)),
                escape(inert(e.answer)),
                escape(inert(sources)),
            )
        out.print(table)
