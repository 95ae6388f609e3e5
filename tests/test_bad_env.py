"""A bad environment: `NEWSBOT_INDEX_DIR` (or `--index-dir`) naming a file, a `.env` that is
not UTF-8. Every command says so in one line and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app

runner = CliRunner()
COMMANDS = {
    "index": ["index"],
    "ask": ["ask", "How much aid?"],
    "status": ["status"],
}


def one_error_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_index_dir_that_is_a_file_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index\n")
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(a_file))

    line = one_error_line(args)

    assert line == (
        f"error: invalid setting NEWSBOT_INDEX_DIR: {a_file} is a file, not a folder: "
        "point it at a folder"
    )
    assert a_file.read_text() == "not an index\n"


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_index_dir_flag_under_a_file_is_one_line(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index\n")

    line = one_error_line([*args, "--index-dir", str(a_file / "index")])

    assert line == (
        f"error: --index-dir: {a_file / 'index'} is under {a_file}, which is a file, not a "
        "folder: point it at a folder"
    )


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_dotenv_that_is_not_utf8_is_one_line_naming_it(
    env: Path, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / ".env").write_bytes(b"NEWSBOT_TOP_K=3\n# caf\xe9 notes\n")

    line = one_error_line(args)

    assert line == (
        f"error: {tmp_path / '.env'} is not UTF-8 (byte 0xe9 on line 2): save it as UTF-8"
    )
