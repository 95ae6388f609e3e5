"""The README's "Try it" commands, run with the real model on the bundled corpus, print what
the README shows (slow: loads torch and embeds the corpus, once for the module)."""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.env_example import env_names
from tests.conftest import BUNDLED

runner = CliRunner()

README = Path(__file__).resolve().parent.parent / "README.md"
# A shown example: a ```console block; `$ newsbot …` starts a command, `> …` is a line typed
# into it (`newsbot chat`), every other line is printed by it.
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)
PROMPT = "$ newsbot "
TYPED = "> "
# What the README leaves out of an output, a whole line or part of one.
ELLIPSIS = "…"


@dataclass(frozen=True)
class Example:
    """One command the README shows: its arguments, what is typed into it, what it prints."""

    args: tuple[str, ...]
    typed: tuple[str, ...]
    shown: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join(self.args)


def examples(markdown: str) -> list[Example]:
    """Every `$ newsbot …` command in `markdown`'s console blocks, in order."""
    found: list[Example] = []
    for block in CONSOLE_BLOCK.findall(markdown):
        args: list[str] | None = None
        typed: list[str] = []
        shown: list[str] = []
        for line in block.splitlines():
            if line.startswith(PROMPT):
                if args is not None:
                    found.append(Example(tuple(args), tuple(typed), tuple(shown)))
                args, typed, shown = shlex.split(line[len(PROMPT) :]), [], []
            elif args is None:
                raise ValueError(f"output before any command in a console block: {line!r}")
            elif line.startswith(TYPED):
                typed.append(line[len(TYPED) :])
            else:
                shown.append(line)
        if args is not None:
            found.append(Example(tuple(args), tuple(typed), tuple(shown)))
    return found


def missing(shown: tuple[str, ...], printed: str) -> str | None:
    """The first piece of `shown` that `printed` lacks, in order; None if every piece is there.

    Whitespace is compared collapsed (a terminal wraps lines where it likes); each shown line
    is cut at `…` into pieces, and the pieces must appear in order, anything between them."""
    text = " ".join(printed.split())
    at = 0
    for line in shown:
        for piece in line.split(ELLIPSIS):
            piece = " ".join(piece.split())
            if not piece:
                continue
            found = text.find(piece, at)
            if found < 0:
                return piece
            at = found + len(piece)
    return None


EXAMPLES = examples(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bundled_index(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[dict[str, str]]:
    """The bundled corpus indexed once with the real model: the environment the commands see."""
    folder = tmp_path_factory.mktemp("readme")
    corpus = shutil.copytree(BUNDLED, folder / "corpus")
    env = {
        "NEWSBOT_CORPUS_DIR": str(corpus),
        "NEWSBOT_INDEX_DIR": str(folder / "index"),
        "EMBED_CACHE_DIR": str(model_cache),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test, not per module
        for name in env_names():
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.chdir(folder)
        indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output
    yield env


def test_the_readme_shows_the_behaviours_worth_trying() -> None:
    """The examples cover what a newcomer should see, so they cannot quietly thin out."""
    shown = "\n".join(line for e in EXAMPLES for line in e.shown)
    names = [e.name for e in EXAMPLES]
    assert any(n.startswith("chat") for n in names)
    assert any("--since" in e.args for e in EXAMPLES)
    assert "also reported by" in shown
    assert "The articles don't say for sure." in shown
    assert "The indexed articles don't cover this question." in shown
    assert "(Why are Harbourline drivers striking?)" in shown  # a follow-up, as understood


@pytest.mark.integration
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_a_readme_command_prints_what_the_readme_shows(
    example: Example, bundled_index: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in bundled_index.items():
        monkeypatch.setenv(name, value)
    typed = "".join(f"{line}\n" for line in example.typed) if example.typed else None

    result = runner.invoke(app, list(example.args), input=typed)

    assert result.exit_code == 0, result.output
    lacking = missing(example.shown, result.stdout)
    assert lacking is None, f"`newsbot {example.name}` did not print {lacking!r}:\n{result.stdout}"


def test_the_checker_reads_abridged_output_in_order() -> None:
    """`missing` passes what the README may abridge, and fails a line out of order or changed."""
    printed = "The bridge will cost\n£21.7 million, a week later. [1]\n\n[1] Courier · 2025-03-10\n"

    assert (
        missing(("The bridge will cost £21.7 million, … [1]", "…", "[1] Courier"), printed) is None
    )
    assert missing(("[1] Courier", "The bridge will cost"), printed) == "The bridge will cost"
    assert missing(("The bridge will cost £18.4 million",), printed) == (
        "The bridge will cost £18.4 million"
    )


def test_the_examples_are_read_from_console_blocks_only() -> None:
    markdown = (
        '```sh\nnewsbot ask "not an example"\n```\n'
        '```console\n$ newsbot ask "How many gates?" --since 2025-03-10\nNine. [1]\n…\n'
        "$ newsbot chat\n> Who?\nA. [1]\n> and B?\n(Who is B?)\n```\n"
    )

    assert examples(markdown) == [
        Example(("ask", "How many gates?", "--since", "2025-03-10"), (), ("Nine. [1]", "…")),
        Example(("chat",), ("Who?", "and B?"), ("A. [1]", "(Who is B?)")),
    ]
