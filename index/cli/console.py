"""What every `newsbot` command shares, the adapters' own included: the consoles, one-line
errors, settings with the command's flags on top, the options every command takes, help
that names what to type."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

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


class _RepeatedArgument(TyperArgument):
    """An argument given any number of times: its help shows its metavar (`URL...`), not
    the Python type it is parsed into."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _plain_help(params: list[Any], help_option: Any) -> None:
    """Help for `params` that shows no Python types: a flag (`--help` too) takes no value, so
    shows none; an argument given many times shows its metavar only."""
    for param in [*params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar and param.nargs != 1:
            param.__class__ = _RepeatedArgument


class Command(TyperCommand):
    """A `newsbot` command (`app.command(cls=Command)`): its help shows no `<bool>` after a
    flag and no `<list[str]>` after an argument."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _plain_help(self.params, option)
        return option


class Group(TyperGroup):
    """A `newsbot` command group (`typer.Typer(cls=Group)`): its help as a `Command`'s."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _plain_help(self.params, option)
        return option
