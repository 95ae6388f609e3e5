"""`newsbot bot`: the Discord adapter's command, added through the `newsbot.commands` entry
point (see `index.plugins`). Discord itself is imported only when the command runs."""

from __future__ import annotations

import typer

from index.console import IndexDirOption, load_settings, user_errors


def register_commands(app: typer.Typer) -> None:
    """Add `newsbot bot` to the `newsbot` command line."""

    @app.command("bot")
    def bot_command(index_dir: IndexDirOption = None) -> None:
        """Run the Discord bot (needs DISCORD_TOKEN in .env); Ctrl+C stops it.

        With FEEDS_SYNC_MINUTES set, it also syncs the feeds and reindexes that often, in the
        background."""
        settings = load_settings(index_dir=index_dir)
        with user_errors():
            from bot.app import run

            run(settings)
