"""Commands that adapters add to `newsbot`: the core names none of them.

An adapter package declares, in its `pyproject.toml`,

    [project.entry-points."newsbot.commands"]
    bot = "bot.cli:register_commands"

and `register_commands(app)` adds its typer commands. An adapter that cannot be imported
(not installed, or its own dependencies missing) adds nothing, and `newsbot` works without it.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

log = logging.getLogger("newsbot.plugins")

COMMANDS_GROUP = "newsbot.commands"


def register_commands(app: typer.Typer) -> list[str]:
    """Let every installed adapter add its commands to `app`; the names of those that did."""
    added = []
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:
            log.debug("adapter %s not available: %s", entry.name, exc)
            continue
        register(app)
        added.append(entry.name)
    return added
