"""`newsbot index` over hostile corpus files (issue 18): each is one `skipped` line, never a
traceback or a stopped run; symlinks never lead the walk out of the corpus."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.ingest.corpus.scan import scan_corpus
from tests.test_bad_files import summary

runner = CliRunner()
DEEP = 100_000  # far deeper than Python's recursion limit
DEEP_JSON = "[" * DEEP + "]" * DEEP
HUGE_INT = "9" * 5000  # Python refuses to convert an integer of over 4300 digits
HUGE_HEX = "0x" + "f" * 5000  # parses, but would have 6000 digits printed


def indexed(corpus: Path) -> tuple[list[str], dict[str, str]]:
    """Index `corpus` (the CLI, the fake model): the stderr lines and the summary table."""
    result = runner.invoke(app, ["index"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    return sorted(result.stderr.strip().splitlines()), summary(result.stdout)


def articles_in_index() -> int:
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    return int(json.loads(status.stdout)["articles"])


def md(front: str, body: str = "A story about the harbour.") -> str:
    return f"---\n{front}\n---\n{body}\n"


def test_a_date_or_time_not_in_the_calendar_skips_its_file_or_record(
    env: Path, corpus: Path
) -> None:
    (corpus / "yaml-day.md").write_text(md("published: 2024-02-30"))
    (corpus / "yaml-time.md").write_text(md("published: 2024-02-03T25:61:00"))
    (corpus / "quoted.md").write_text(md('published: "2024-02-30"'))
    (corpus / "prose.md").write_text(md("published: 30 February 2024"))
    (corpus / "toml.md").write_text("+++\npublished = 2024-02-30\n+++\nA story.\n")
    (corpus / "side.md").write_text("A story with a sidecar.\n")
    (corpus / "side.meta.yaml").write_text("title: Side\npublished: 2023-02-29\n")
    records = [
        {"id": "j1", "text": "A story.", "published": "2024-13-01"},
        {"id": "j2", "text": "A story with a real date.", "published": "2024-02-29"},
    ]
    (corpus / "feed.json").write_text(json.dumps(records))
    (corpus / "feed.jsonl").write_text(
        json.dumps({"id": "l1", "text": "A story.", "date": "2024-01-05 24:30"})
        + "\n"
        + json.dumps({"id": "l2", "text": "Another story.", "date": "2024-01-05 23:30"})
        + "\n"
    )

    lines, rows = indexed(corpus)

    not_in_calendar = "'published' date {!r} is not in the calendar"
    assert lines == sorted(
        [
            f"skipped yaml-day.md: {not_in_calendar.format('2024-02-30')}",
            f"skipped yaml-time.md: {not_in_calendar.format('2024-02-03T25:61:00')}",
            f"skipped quoted.md: {not_in_calendar.format('2024-02-30')}",
            f"skipped prose.md: {not_in_calendar.format('30 February 2024')}",
            "skipped toml.md: broken TOML front matter "
            "(Invalid date or datetime (at line 1, column 13))",
            f"skipped side.md: {not_in_calendar.format('2023-02-29')}",
            f"skipped feed.json[0]: {not_in_calendar.format('2024-13-01')}",
            f"skipped feed.jsonl:1: {not_in_calendar.format('2024-01-05 24:30')}",
        ]
    )
    assert rows["added"] == "5"  # the three of the corpus, j2 and l2


def test_strings_that_are_not_unicode_skip_their_file_or_record(env: Path, corpus: Path) -> None:
    (corpus / "one.json").write_text('{"id": "s1", "text": "A story \\udc80."}')
    (corpus / "feed.jsonl").write_text(
        '{"id": "s2", "title": "Half a pair \\ud83d", "text": "A story."}\n'
        '{"id": "s3", "title": "A whole pair \\ud83d\\ude00", "text": "Another story."}\n'
        '{"id": "s4", "author": ["Ann", "\\udcff"], "text": "A third story."}\n'
        # No id: the URL names the article (found by tests/test_hostile_properties.py).
        '{"url": "https://example.com/\\udc80", "text": "A fourth story."}\n'
    )
    (corpus / "front.md").write_text(md('title: "Harbour \\udc80"'))
    (corpus / "side.md").write_text("A story with a sidecar.\n")
    (corpus / "side.meta.yaml").write_text('source: "\\ud800 Wire"\n')

    lines, rows = indexed(corpus)

    assert lines == sorted(
        [
            "skipped one.json[0]: 'text' is not valid Unicode (a lone surrogate, '\\udc80')",
            "skipped feed.jsonl:1: 'title' is not valid Unicode (a lone surrogate, '\\ud83d')",
            "skipped feed.jsonl:3: 'author' is not valid Unicode (a lone surrogate, '\\udcff')",
            "skipped feed.jsonl:4: 'url' is not valid Unicode (a lone surrogate, '\\udc80')",
            "skipped front.md: 'title' is not valid Unicode (a lone surrogate, '\\udc80')",
            "skipped side.md: 'source' is not valid Unicode (a lone surrogate, '\\ud800')",
        ]
    )
    assert rows["added"] == "4"  # the three of the corpus and s3


def test_nesting_deeper_than_python_recurses_skips_its_file_or_line(
    env: Path, corpus: Path
) -> None:
    (corpus / "deep.json").write_text(DEEP_JSON)
    (corpus / "deep-title.json").write_text('{"text": "A story.", "title": ' + DEEP_JSON + "}")
    (corpus / "feed.jsonl").write_text(
        '{"id": "d1", "text": "A story."}\n' + DEEP_JSON + '\n{"id": "d3", "text": "Another."}\n'
    )
    (corpus / "yaml.md").write_text(md("title: " + DEEP_JSON))
    (corpus / "block.md").write_text(md("".join(f"{' ' * n}- \n" for n in range(3000))))
    (corpus / "toml.md").write_text("+++\ntitle = " + DEEP_JSON + "\n+++\nA story.\n")
    (corpus / "side.md").write_text("A story with a sidecar.\n")
    (corpus / "side.meta.yaml").write_text("title: " + "{a: " * 5000 + "b" + "}" * 5000 + "\n")

    lines, rows = indexed(corpus)

    assert lines == sorted(
        [
            "skipped deep.json: invalid JSON (nested too deeply)",
            "skipped deep-title.json: invalid JSON (nested too deeply)",
            "skipped feed.jsonl:2: invalid JSON line (nested too deeply)",
            "skipped yaml.md: broken YAML front matter (nested too deeply)",
            "skipped block.md: broken YAML front matter (nested too deeply)",
            "skipped toml.md: broken TOML front matter (nested too deeply)",
            "skipped side.md: unreadable metadata file side.meta.yaml: nested too deeply",
        ]
    )
    assert rows["added"] == "5"


def test_numbers_too_long_to_convert_are_one_line_or_ignored(env: Path, corpus: Path) -> None:
    (corpus / "big.json").write_text('{"id": "b1", "text": "A story.", "title": ' + HUGE_INT + "}")
    (corpus / "feed.jsonl").write_text('{"id": "b2", "text": "A story.", "n": ' + HUGE_INT + "}\n")
    (corpus / "yaml.md").write_text(md(f"title: {HUGE_INT}"))
    (corpus / "hex.md").write_text(md(f"title: {HUGE_HEX}\npublished: {HUGE_HEX}"))
    (corpus / "hex.toml.md").write_text(f"+++\ntitle = {HUGE_HEX}\n+++\nA story.\n")

    lines, rows = indexed(corpus)

    too_long = "Exceeds the limit (4300 digits) for integer string conversion"
    assert lines == sorted(
        [
            f"skipped big.json: invalid JSON ({too_long})",
            f"skipped feed.jsonl:1: invalid JSON line ({too_long})",
            f"skipped yaml.md: broken YAML front matter ({too_long})",
        ]
    )
    # A hexadecimal number parses; too long to show, it is no title (the text gives one).
    assert rows["added"] == "5"


def test_a_symlink_out_of_the_corpus_is_skipped_and_nothing_is_indexed_twice(
    env: Path, corpus: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere.md").write_text("A story kept outside the corpus.\n")
    (corpus / "up").symlink_to("..")  # the corpus's parent, which holds the corpus
    (corpus / "sport" / "root").symlink_to(tmp_path)
    (corpus / "outside.md").symlink_to(tmp_path / "elsewhere.md")
    assert runner.invoke(app, ["index"]).exit_code == 0
    (corpus / "index").symlink_to(env)
    (corpus / "catalog.json").symlink_to(next(env.rglob("*.sqlite*")))

    lines, rows = indexed(corpus)

    catalog = next(env.rglob("*.sqlite*"))
    assert lines == sorted(
        [
            "skipped up: symlink leads outside the corpus (..)",
            f"skipped sport/root: symlink leads outside the corpus ({tmp_path})",
            f"skipped outside.md: symlink leads outside the corpus ({tmp_path / 'elsewhere.md'})",
            f"skipped index: symlink leads into the index folder ({env})",
            f"skipped catalog.json: symlink leads into the index folder ({catalog})",
        ]
    )
    assert rows["added"] == rows["removed"] == "0"
    assert articles_in_index() == 3


def test_an_index_folder_inside_the_corpus_is_not_read(
    env: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(corpus / "newsbot-index"))
    assert runner.invoke(app, ["index"]).exit_code == 0

    lines, rows = indexed(corpus)

    assert lines == []
    assert rows["unchanged (no model call)"] == "3"


# --- found by the property tests (tests/test_hostile_properties.py) --------------------------


def test_a_sidecar_with_a_name_that_is_not_utf8_adds_no_line_of_its_own(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9")
    (tmp_path / f"{name}.md").write_text("A story.\n")
    (tmp_path / f"{name}.meta.yaml").write_text("title: Café\n")
    (tmp_path / f"{name}-alone.meta.yaml").write_text("title: Nobody's\n")

    scan = scan_corpus(tmp_path)

    assert [str(p) for p in scan.problems] == ["caf\ufffd.md: file name is not UTF-8: rename it"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.json", b"[]"),
        ("empty.json.gz", gzip.compress(b" [ ] \n")),
        ("bom.jsonl", codecs.BOM_UTF8 + b"\n \n"),
    ],
)
def test_a_record_file_without_records_is_one_line(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)

    scan = scan_corpus(tmp_path)

    assert [str(p) for p in scan.problems] == [f"{name}: no articles in it (no records)"]


def test_a_sidecar_symlinked_out_of_the_corpus_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("title: What lies outside\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "story.md").write_text("A story.\n")
    (corpus / "story.meta.yaml").symlink_to(tmp_path / "secret.yaml")

    scan = scan_corpus(corpus)

    assert [str(p) for p in scan.problems] == [
        "story.md: its metadata file story.meta.yaml: symlink leads outside the corpus "
        f"({tmp_path / 'secret.yaml'})"
    ]
    assert scan.articles == []


def test_folders_nested_deeper_than_python_recurses_are_read(env: Path, corpus: Path) -> None:
    depth = 1200  # Python recurses about 1000 deep (pathlib's mkdir and shutil.rmtree too)
    folders = [corpus.joinpath(*["d"] * n) for n in range(1, depth + 1)]
    try:
        for folder in folders:
            folder.mkdir()
        (folders[-1] / "story.md").write_text("A story found at the bottom of the well.\n")

        lines, rows = indexed(corpus)

        assert lines == []
        assert rows["added"] == "4"
    finally:  # from the bottom up: pytest's own clean-up would recurse too deep
        (folders[-1] / "story.md").unlink(missing_ok=True)
        for folder in reversed(folders):
            if folder.exists():
                folder.rmdir()


def test_a_published_value_too_long_to_be_a_date_is_no_date_at_once(tmp_path: Path) -> None:
    # dateutil took 40 s over a million digits: a JSONL file of such lines took hours.
    lines = [{"id": f"n{n}", "text": "A story.", "published": "1" * 1_000_000} for n in range(3)]
    (tmp_path / "feed.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    started = time.perf_counter()

    scan = scan_corpus(tmp_path)

    assert time.perf_counter() - started < 10
    assert [a.published for a in scan.articles] == [None, None, None]


def test_a_corpus_inside_the_index_folder_follows_its_own_symlinks(tmp_path: Path) -> None:
    corpus = tmp_path / "index" / "corpus"
    (corpus / "2024").mkdir(parents=True)
    (corpus / "2024" / "story.md").write_text("A story.\n")
    (corpus / "latest").symlink_to("2024")

    scan = scan_corpus(corpus, index_dir=tmp_path / "index")

    assert scan.problems == []
    assert [a.id for a in scan.articles] == ["2024/story.md", "latest/story.md"]


def test_an_id_that_is_a_list_or_an_object_skips_its_record(tmp_path: Path) -> None:
    deep_id = "[" * 900 + "]" * 900  # parses, but printing it would recurse too deep
    (tmp_path / "feed.jsonl").write_text(
        '{"id": ["a"], "text": "A story."}\n'
        '{"id": {"a": 1}, "text": "A story."}\n'
        f'{{"id": {deep_id}, "text": "A story."}}\n'
        '{"id": 7, "text": "A story."}\n'
    )

    scan = scan_corpus(tmp_path)

    assert [str(p) for p in scan.problems] == [
        f"feed.jsonl:{n}: 'id' is not a string or a number" for n in (1, 2, 3)
    ]
    assert [a.id for a in scan.articles] == ["7"]
