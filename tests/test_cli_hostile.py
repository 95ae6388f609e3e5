"""`newsbot ask` with hostile questions: one clear line or a well-formed answer, never a crash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.text import MAX_QUESTION_CHARS

runner = CliRunner()
AID_QUESTION = "How much military aid has the United States sent to Ukraine?"
TEN_KB = ("@everyone <@&666666666666666666> why " * 300)[:10_000]
# What a terminal would act on (control codes, a newline aside) or reorder (bidi overrides).
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
HOSTILE = {
    "control-characters": f"\x1b[31m{AID_QUESTION}\x1b[0m\x00\x07\u202e",
    "markdown-and-code-fences": f"```py\nprint('hi')\n```\n# **{AID_QUESTION}** ||x|| > q",
    "mentions-and-links": f"@everyone <@&666666666666666666> [x](https://e.example) {AID_QUESTION}",
    "2000-characters": TEN_KB[:MAX_QUESTION_CHARS],
}


@pytest.fixture
def indexed(env: Path) -> Path:
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    return env


@pytest.mark.parametrize(
    "question",
    ["", " \n\t\u3000 ", "\x00\x07\x1b[2J\u200b\u202e"],
    ids=["empty", "whitespace", "nothing-visible"],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_blank_question_is_one_line_and_status_1(
    indexed: Path, question: str, as_json: bool
) -> None:
    result = runner.invoke(app, ["ask", question, *(["--json"] if as_json else [])])

    assert result.exit_code == 1
    assert result.output == "error: the question is empty\n"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_question_too_long_is_one_line_and_status_1_never_cut(
    indexed: Path, as_json: bool
) -> None:
    result = runner.invoke(app, ["ask", *(["--json"] if as_json else []), "--", TEN_KB])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.output == (
        f"error: the question is too long: 9,999 characters, at most {MAX_QUESTION_CHARS:,}\n"
    )


def test_a_question_is_measured_once_cleaned(indexed: Path) -> None:
    # Invisible characters and runs of spaces are not counted: what is left is at the limit.
    question = "\u200b" * 50 + TEN_KB[:MAX_QUESTION_CHARS] + "   \x00"

    result = runner.invoke(app, ["ask", "--json", "--", question])

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("question", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_question_gets_a_plain_answer(indexed: Path, question: str) -> None:
    result = runner.invoke(app, ["ask", "--", question])

    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert result.stdout.strip()
    assert not CONTROL.search(result.stdout) and not BIDI.search(result.stdout)


@pytest.mark.parametrize("question", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_question_gets_one_json_object(indexed: Path, question: str) -> None:
    result = runner.invoke(app, ["ask", "--json", "--", question])

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert not CONTROL.search(line), "JSON escapes control characters"
    data = json.loads(line)
    assert isinstance(data["found"], bool) and data["answer"]
    assert 0 < len(data["question"]) <= len(question)


def test_json_echoes_no_bidi_override(indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "--json", "--", f"\u202e{AID_QUESTION}"])

    assert result.exit_code == 0, result.output
    assert not BIDI.search(result.stdout)


def test_a_question_that_looks_like_an_option_is_asked_after_two_dashes(indexed: Path) -> None:
    result = runner.invoke(app, ["ask", "--json", "--", f"-- {AID_QUESTION}"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["found"] is True


def test_escape_codes_in_an_article_never_reach_the_terminal(env: Path, corpus: Path) -> None:
    # Text files with control characters are skipped as binary; JSON strings can carry them.
    record = {
        "id": "hostile",
        "title": "\x1b[31mRotterdam\x1b[0m harbour",
        "source": "\x1b[5mEvil Wire",
        "url": "https://example.com/\x1b[2J",
        "text": "The \x1b]0;pwned\x07harbour of \x1b[2JRotterdam\u202e handled 400 million tonnes.",
    }
    (corpus / "feed.jsonl").write_text(json.dumps(record) + "\n")
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0 and "feed.jsonl" not in indexed.output, indexed.output

    result = runner.invoke(app, ["ask", "Rotterdam"])

    assert result.exit_code == 0, result.output
    assert "Rotterdam" in result.stdout and "400 million tonnes" in result.stdout
    assert not CONTROL.search(result.stdout) and not BIDI.search(result.stdout)


# --- bytes that are not UTF-8, and JSON that is not Unicode, in a question -----------------

NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
NOT_UTF8 = b"How much military aid \xff\xfe has the United States sent to Ukraine?"


def asked(stdout: str) -> list[dict[str, object]]:
    """The --json objects printed, checked to be one a line."""
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("how", ["argument", "stdin", "batch-file"])
def test_bytes_that_are_not_utf8_in_a_question_become_u_fffd(
    indexed: Path, tmp_path: Path, how: str
) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_bytes(b'{"question": "' + NOT_UTF8 + b'"}\n')
    args, stdin = {
        "argument": ([b"ask", b"--json", b"--", NOT_UTF8], None),
        "stdin": ([b"ask", b"--batch", b"-"], batch.read_bytes()),
        "batch-file": ([b"ask", b"--batch", os.fsencode(batch)], None),
    }[how]
    # The real program, so the argument is the bytes themselves; strict UTF-8 output, as in
    # a UTF-8 locale (the C locale would let Python write the bytes back out as they came).
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    command = [os.fsencode(sys.executable), os.fsencode(NEWSBOT), *args]

    result = subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=120)

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stderr == b""
    (answer,) = asked(result.stdout.decode("utf-8"))
    assert answer["question"] == NOT_UTF8.decode("utf-8", "replace")
    assert answer["found"] is True


def test_a_lone_surrogate_in_a_question_is_u_fffd(indexed: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text('{"question": "How much \\udc80 aid has the US sent to Ukraine?"}\n')

    for args in (["ask", "--json", "--", "How much \udcff aid?"], ["ask", "--batch", str(batch)]):
        result = runner.invoke(app, args)

        assert result.exit_code == 0, result.output
        (answer,) = asked(result.stdout)
        assert "\ufffd" in str(answer["question"]) and answer["answer"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "not JSON (nested too deeply)"),
        ('{"question": ' + "1" * 5000 + "}", "not JSON (Exceeds the limit (4300 digits)"),
        ('{"question": ' + "[" * 900 + "]" * 900 + "}", "expected an object with a non-empty"),
        ('{"question": "q", "date": ' + "[" * 900 + "]" * 900 + "}", "'date' wants a date"),
        ('{"question": "q", "date": "2024-02-30"}', "'date' wants a date such as 2024-11-17"),
        (json.dumps({"question": TEN_KB}), "the question is too long: 9,999 characters"),
        ('{"question": "\\u200b\\u0007"}', "the question is empty"),
    ],
    ids=[
        "nested-line",
        "huge-number",
        "nested-question",
        "nested-date",
        "no-such-date",
        "too-long",
        "nothing-visible",
    ],
)
def test_a_hostile_batch_line_is_one_line(
    indexed: Path, tmp_path: Path, line: str, reason: str
) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text(f'{{"question": "aid"}}\n{line}\n')

    result = runner.invoke(app, ["ask", "--batch", str(batch)])

    assert result.exit_code == 1
    assert result.stdout == ""  # the first line is not answered either
    (message,) = result.stderr.splitlines()
    assert message.startswith(f"error: {batch}:2") and reason in message, message
