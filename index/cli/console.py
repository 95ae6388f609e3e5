"""What every `newsbot` command shares, the adapters' own included: the consoles, one-line
errors, settings with the command's flags on top, the options every command takes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from index.errors import NewsbotError
from index.settings import Settings

out = Console()
err = Console(stderr=True)

IndexDirOption = Annotated[
    Path | None,
    typer.Option("--index-dir", help="Index folder (default: NEWSBOT_INDEX_DIR or .newsbot)."),
]


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line and exit status 1."""
    try:
        yield
    except NewsbotError as exc:
        fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = (".".join(str(p) for p in first["loc"]) or "settings").upper()
        if first["type"] == "extra_forbidden":
            fail(f"unknown setting {name} in .env (the known ones are in .env.example)")
        fail(f"invalid setting {name}: {first['msg'].removeprefix('Value error, ')}")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with the given CLI flags on top."""
    with user_errors():
        return Settings.read().overridden(**overrides)
