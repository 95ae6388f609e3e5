"""The `newsbot` command line: a thin adapter that parses flags, calls the core, renders.

Each command group is a module of its own (`indexing`, `web`, `asking`, `eval`), what they
draw is `render`; this module registers them. It names no adapter: `newsbot bot` and any
other adapter's commands are added through the `newsbot.commands` entry points
(`index.cli.plugins`).
"""

from __future__ import annotations

import typer

from index.cli.asking import ask_command, chat_command
from index.cli.console import Command, Group
from index.cli.eval import eval_command
from index.cli.indexing import index_command, status_command
from index.cli.plugins import register_commands
from index.cli.web import add_command, feeds_app, sync_command

app = typer.Typer(
    cls=Group,
    help="newsbot: answers questions about your news articles, citing the passages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("index", cls=Command)(index_command)
app.command("add", cls=Command)(add_command)
app.command("sync", cls=Command)(sync_command)
app.command("ask", cls=Command)(ask_command)
app.command("chat", cls=Command)(chat_command)
app.command("eval", cls=Command)(eval_command)
app.command("status", cls=Command)(status_command)
app.add_typer(feeds_app, name="feeds")
register_commands(app)  # the adapters' own commands (`newsbot bot`, ...), if installed


def main() -> None:
    """Console-script entry point."""
    app()
