"""The corpus loader: every supported format, the metadata it finds, and what it refuses."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from index.errors import ArticleError, CorpusError
from index.ingest.corpus.article import (
    MAX_TITLE_CHARS,
    PROMO_MAX_CHARS,
    PROMO_PATTERNS,
    Article,
    clean_text,
    is_promo_line,
    make_article,
)
from index.ingest.corpus.decoding import decode_text
from index.ingest.corpus.files import MAX_ARTICLE_BYTES, MB, FileLimits
from index.ingest.corpus.frontmatter import split_front_matter
from index.ingest.corpus.metadata import date_from_url, normalise_date, outlet_from_url
from index.ingest.corpus.readers import READERS, Read, Reader
from index.ingest.corpus.scan import CorpusScan, scan_corpus
from tests.conftest import BUNDLED, DATA, SEED_ID, write_article

HTML_PAGE = DATA / "articles" / "harbour-bridge.html"

BRIDGE_BODY = (
    "The council voted on Wednesday to build a bridge across the harbour.\n\n"
    "Construction is expected to start next spring and to take four years."
)


# --- helpers -------------------------------------------------------------------------------


def by_id(scan: CorpusScan) -> dict[str, Article]:
    return {article.id: article for article in scan.articles}


def only_article(scan: CorpusScan) -> Article:
    assert scan.problems == [], [str(p) for p in scan.problems]
    assert len(scan.articles) == 1, [a.id for a in scan.articles]
    return scan.articles[0]


def problem_at(scan: CorpusScan, where: str) -> ArticleError:
    matches = [p for p in scan.problems if p.where == where]
    assert len(matches) == 1, [str(p) for p in scan.problems]
    return matches[0]


def write_bytes(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_text(folder: Path, name: str, text: str) -> Path:
    return write_bytes(folder, name, text.encode("utf-8"))


def jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def record(n: int, **extra: Any) -> dict[str, Any]:
    """An invented news record in the evaluation-set format."""
    rec: dict[str, Any] = {
        "id": f"rec-{n}",
        "url": f"https://news.example.org/local/story-{n}",
        "title": f"Story number {n}",
        "text": f"Story {n}: the town library reopened after a flood closed it for {n} weeks.",
        "retrieved_week": "2024-03-11",
    }
    rec.update(extra)
    return rec


# --- text and Markdown ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bridge.md", "bridge.txt", "bridge.markdown"])
def test_front_matter_gives_metadata_and_is_not_text(tmp_path: Path, name: str) -> None:
    write_article(
        tmp_path,
        name,
        BRIDGE_BODY,
        title="Council approves harbour bridge",
        source="Riverton Gazette",
        url="https://rivertongazette.example/local/bridge",
        published="2024-03-14",
        author="Maria Okafor",
    )
    article = only_article(scan_corpus(tmp_path))
    assert article.id == name
    assert article.path == name
    assert article.title == "Council approves harbour bridge"
    assert article.source == "Riverton Gazette"
    assert article.url == "https://rivertongazette.example/local/bridge"
    assert article.published == "2024-03-14"
    assert article.author == "Maria Okafor"
    assert article.text == BRIDGE_BODY
    assert "---" not in article.text and "title:" not in article.text


def test_front_matter_native_yaml_types(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "a.md",
        "---\ntitle: 2024 budget passes\npublished: 2024-01-05\n"
        "author: [Ana Lima, Tom Berg]\n---\nThe budget passed by a wide margin.\n",
    )
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "2024 budget passes"
    assert article.published == "2024-01-05"
    assert article.author == "Ana Lima, Tom Berg"


def test_front_matter_with_windows_newlines(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "---\r\ntitle: Dam opens\r\n---\r\nLine one.\r\n\r\nLine two.\r\n")
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "Dam opens"
    assert article.text == "Line one.\n\nLine two."


def test_empty_front_matter_is_allowed() -> None:
    meta, body = split_front_matter("---\n---\nBody text.\n", "a.md")
    assert meta == {}
    assert body == "Body text.\n"


def test_without_front_matter_first_line_is_title(tmp_path: Path) -> None:
    write_text(
        tmp_path, "comet.txt", "\n\n  Comet seen over the valley  \n\nA bright comet was visible.\n"
    )
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "Comet seen over the valley"
    assert article.text.startswith("Comet seen over the valley")
    assert article.source is None and article.url is None and article.published is None


def test_markdown_heading_loses_its_hashes(tmp_path: Path) -> None:
    write_text(tmp_path, "comet.md", "## Comet seen over the valley\n\nA comet was visible.\n")
    assert only_article(scan_corpus(tmp_path)).title == "Comet seen over the valley"


def test_long_first_line_is_shortened_for_the_title(tmp_path: Path) -> None:
    first = " ".join(f"word{n}" for n in range(80))  # about 550 characters
    write_text(tmp_path, "long.txt", first + "\n\nSecond paragraph.\n")
    article = only_article(scan_corpus(tmp_path))
    assert len(article.title) <= MAX_TITLE_CHARS + 1
    assert article.title.endswith("…")
    shortened = article.title.removesuffix("…")
    assert first.startswith(shortened + " ")  # cut at a word boundary
    assert len(shortened) > MAX_TITLE_CHARS // 2
    assert first in article.text  # the text itself is not shortened


# --- sidecar metadata ----------------------------------------------------------------------


def test_sidecar_metadata_is_merged_and_not_an_article(tmp_path: Path) -> None:
    write_text(tmp_path, "bridge.txt", BRIDGE_BODY + "\n")
    write_text(
        tmp_path,
        "bridge.meta.yaml",
        "# hand-written metadata\ntitle: Council approves harbour bridge\n"
        "source: Riverton Gazette\npublished: 2024-03-14\n"
        "url: https://rivertongazette.example/local/bridge\n",
    )
    article = only_article(scan_corpus(tmp_path))
    assert article.id == "bridge.txt"
    assert article.title == "Council approves harbour bridge"
    assert article.source == "Riverton Gazette"
    assert article.published == "2024-03-14"
    assert article.url == "https://rivertongazette.example/local/bridge"
    assert article.text == BRIDGE_BODY


def test_front_matter_wins_over_sidecar(tmp_path: Path) -> None:
    write_article(tmp_path, "bridge.md", BRIDGE_BODY, title="From front matter")
    write_text(tmp_path, "bridge.meta.yaml", "title: From sidecar\nsource: Sidecar Times\n")
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "From front matter"
    assert article.source == "Sidecar Times"


def test_sidecar_that_is_not_a_mapping_fails_its_file(tmp_path: Path) -> None:
    write_text(tmp_path, "bridge.txt", BRIDGE_BODY)
    write_text(tmp_path, "bridge.meta.yaml", "- just\n- a list\n")
    write_text(tmp_path, "other.txt", "Other story\n\nSomething else happened.")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["other.txt"]
    assert "not a mapping" in problem_at(scan, "bridge.txt").reason
    assert scan.failed_paths == {"bridge.txt"}


def test_shipped_seed_article_loads_clean() -> None:
    scan = scan_corpus(BUNDLED)
    assert not [p for p in scan.problems if p.where.startswith("us-long-range")]
    article = by_id(scan)[SEED_ID]
    assert article.title == (
        "Biden lets Ukraine strike deeper into Russia with US long-range missiles"
    )
    assert article.source == "BusinessDay"
    assert article.published == "2024-11-17"
    assert "$56.2 billion in military aid since Russia invaded in February 2022" in article.text
    assert article.text.startswith("President Biden has decided")
    for promo in ("Read Also", "African billionaires", "Join BusinessDay", "whatsapp", "Whatsapp"):
        assert promo not in article.text
    assert not any(line.endswith("Open In Whatsapp") for line in article.text.splitlines())


def test_the_bundled_demo_articles_load_clean_with_their_metadata() -> None:
    """30 made-up articles in three formats, each with the title, outlet, date and link a
    citation shows (docs/demo.md)."""
    scan = scan_corpus(BUNDLED)

    assert scan.problems == []
    demo = [a for a in scan.articles if a.id != SEED_ID]
    assert len(demo) == 30
    for article in demo:
        assert article.title and article.source and article.url, article.id
        assert article.published and article.published.startswith("2025-03"), article.id
        assert 150 <= len(article.text.split()) <= 400, article.id
    assert {Path(a.path).suffix for a in demo} == {".md", ".txt", ".jsonl"}
    assert len({a.source for a in demo}) == 4


# --- HTML ----------------------------------------------------------------------------------


def test_html_main_text_and_metadata(tmp_path: Path) -> None:
    shutil.copy(HTML_PAGE, tmp_path / "bridge.html")
    article = only_article(scan_corpus(tmp_path))
    assert article.id == "bridge.html"
    assert article.title == "Riverton council approves new harbour bridge"
    assert article.published == "2024-03-14"
    assert article.source == "The Riverton Gazette"
    assert article.author == "Maria Okafor"
    assert article.url == "https://www.rivertongazette.example/local/harbour-bridge-approved"
    assert "voted nine to two on Wednesday night" in article.text
    assert "estimated cost of 312 million dollars" in article.text
    assert "container ships pass underneath at high tide" in article.text
    for boilerplate in (
        "Subscribe to the Gazette",
        "Weather",
        "Privacy policy",
        "Cookie settings",
        "All rights reserved",
        "Related stories",
        "Tram extension delayed again",
    ):
        assert boilerplate not in article.text


def test_html_sidecar_overrides_extracted_metadata(tmp_path: Path) -> None:
    shutil.copy(HTML_PAGE, tmp_path / "bridge.htm")
    write_text(tmp_path, "bridge.meta.yaml", "published: 2024-03-15\nsource: Gazette Online\n")
    article = only_article(scan_corpus(tmp_path))
    assert article.published == "2024-03-15"
    assert article.source == "Gazette Online"
    assert article.title == "Riverton council approves new harbour bridge"


def test_html_without_article_text_is_a_problem(tmp_path: Path) -> None:
    write_text(
        tmp_path, "empty.html", "<html><head><title>Nothing</title></head><body></body></html>"
    )
    scan = scan_corpus(tmp_path)
    assert scan.articles == []
    assert "no article text" in problem_at(scan, "empty.html").reason
    assert scan.failed_paths == {"empty.html"}


# --- JSON and JSONL ------------------------------------------------------------------------


def test_json_single_object(tmp_path: Path) -> None:
    write_text(tmp_path, "one.json", json.dumps(record(1)))
    article = only_article(scan_corpus(tmp_path))
    assert article.id == "rec-1"
    assert article.path == "one.json"
    assert article.title == "Story number 1"
    assert article.url == "https://news.example.org/local/story-1"
    assert article.source == "news.example.org"
    assert article.text == record(1)["text"]
    assert article.published is None  # retrieved_week is not a publication date


def test_json_list_keeps_order(tmp_path: Path) -> None:
    write_text(tmp_path, "many.json", json.dumps([record(2), record(1), record(3)]))
    scan = scan_corpus(tmp_path)
    assert scan.problems == []
    assert [a.id for a in scan.articles] == ["rec-2", "rec-1", "rec-3"]
    assert {a.path for a in scan.articles} == {"many.json"}


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.jsonl.gz", "feed.json.gz"])
def test_jsonl_and_gzip(tmp_path: Path, name: str) -> None:
    records = [record(1), record(2, published="2024-03-12", author="Ana Lima")]
    if name == "feed.json.gz":
        data = json.dumps(records).encode("utf-8")
    else:
        data = jsonl(records).encode("utf-8")
    write_bytes(tmp_path, name, gzip.compress(data) if name.endswith(".gz") else data)
    scan = scan_corpus(tmp_path)
    assert scan.problems == []
    assert [a.id for a in scan.articles] == ["rec-1", "rec-2"]
    second = scan.articles[1]
    assert second.published == "2024-03-12"
    assert second.author == "Ana Lima"
    assert second.text == record(2)["text"]


def test_id_without_explicit_id_comes_from_url(tmp_path: Path) -> None:
    a = record(1)
    b = record(2)
    del a["id"], b["id"]
    write_text(tmp_path, "first.jsonl", jsonl([a, b]))
    write_text(tmp_path / "elsewhere", "second.jsonl", jsonl([record(3), b | {"title": "Moved"}]))
    first = scan_corpus(tmp_path)
    ids = [x.id for x in first.articles if x.path == "first.jsonl"]
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all("first.jsonl" not in i and i.strip() for i in ids)
    # Same url elsewhere, at another line: the same id, so it is caught as a duplicate.
    dup = problem_at(first, "elsewhere/second.jsonl:2")
    assert ids[1] in dup.reason and "duplicate" in dup.reason and "first.jsonl:2" in dup.reason
    # And stable across scans.
    assert [x.id for x in scan_corpus(tmp_path).articles] == [x.id for x in first.articles]


def test_malformed_jsonl_line_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    text = jsonl([record(1)]) + '{"id": "rec-2", "text": "cut off\n' + jsonl([record(3)])
    write_text(tmp_path, "feed.jsonl", text)
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1", "rec-3"]
    assert "invalid JSON" in problem_at(scan, "feed.jsonl:2").reason
    # A bad record may be an indexed article whose line broke: the file's articles are kept.
    assert scan.failed_paths == {"feed.jsonl"}


def test_jsonl_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    write_text(tmp_path, "feed.jsonl", jsonl([record(1)]) + "\n" + "not json\n")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1"]
    problem_at(scan, "feed.jsonl:3")


def test_record_without_text_is_a_problem(tmp_path: Path) -> None:
    no_text = record(2)
    del no_text["text"]
    write_text(tmp_path, "feed.jsonl", jsonl([record(1), no_text, record(3, text="   "), [1, 2]]))
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1"]
    assert "text" in problem_at(scan, "feed.jsonl:2").reason
    assert "text" in problem_at(scan, "feed.jsonl:3").reason
    assert "object" in problem_at(scan, "feed.jsonl:4").reason
    # A bad record may be an indexed article whose line broke: the file's articles are kept.
    assert scan.failed_paths == {"feed.jsonl"}


def test_jsonl_text_with_unicode_line_separators(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False) writes U+2028, U+2029 and U+0085 unescaped: they are
    # not line breaks in JSONL.
    text = "The mayor spoke.\u2028She said the bridge\u2029will open\x85in 2028."
    write_text(tmp_path, "feed.jsonl", jsonl([record(1, text=text), record(2)]))
    scan = scan_corpus(tmp_path)
    assert scan.problems == [], [str(p) for p in scan.problems]
    assert [a.id for a in scan.articles] == ["rec-1", "rec-2"]
    assert "She said the bridge" in scan.articles[0].text


def test_invalid_json_file_fails_as_a_whole(tmp_path: Path) -> None:
    write_text(tmp_path, "broken.json", '{"id": "x", "text": ')
    write_text(tmp_path, "ok.jsonl", jsonl([record(1)]))
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1"]
    assert "invalid JSON" in problem_at(scan, "broken.json").reason
    assert scan.failed_paths == {"broken.json"}


@pytest.mark.parametrize(
    "data",
    [
        b"this is not gzip at all",
        gzip.compress(jsonl([record(9)]).encode())[:-6],
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage after a gzip header",
    ],
    ids=["not-gzip", "truncated", "corrupt-deflate"],
)
def test_bad_gzip_is_a_problem_not_a_crash(tmp_path: Path, data: bytes) -> None:
    write_bytes(tmp_path, "feed.jsonl.gz", data)
    write_text(tmp_path, "ok.jsonl", jsonl([record(1)]))
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1"]
    assert "gzip" in problem_at(scan, "feed.jsonl.gz").reason
    assert scan.failed_paths == {"feed.jsonl.gz"}


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write_text(tmp_path, "a.jsonl", jsonl([record(1), record(2)]))
    write_text(tmp_path, "b.jsonl", jsonl([record(2, title="Other title"), record(3)]))
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1", "rec-2", "rec-3"]
    assert by_id(scan)["rec-2"].path == "a.jsonl"
    assert by_id(scan)["rec-2"].title == "Story number 2"
    dup = problem_at(scan, "b.jsonl:1")
    assert "duplicate" in dup.reason and "rec-2" in dup.reason and "a.jsonl:2" in dup.reason
    assert dup.path == "b.jsonl" and not dup.whole_file
    assert scan.failed_paths == set()


# --- outlet and dates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "outlet"),
    [
        ("https://www.bbc.co.uk/news/world-123", "BBC"),
        ("https://news.bbc.co.uk/2/hi/world/123.stm", "BBC"),
        ("https://edition.cnn.com/2024/01/05/world/story/index.html", "CNN"),
        ("https://apnews.com/article/abc", "AP News"),
        ("https://www.nytimes.com/2024/01/05/us/story.html", "The New York Times"),
        ("https://businessday.ng/news/article/x/", "BusinessDay"),
        ("https://WWW.Reuters.com/world/x", "Reuters"),
        ("https://www.rivertongazette.example/local/x", "rivertongazette.example"),
        ("https://blog.example.org:8080/post", "blog.example.org"),
        ("https://notcnn.com/story", "notcnn.com"),
        ("not a url", None),
    ],
)
def test_outlet_from_url(url: str, outlet: str | None) -> None:
    assert outlet_from_url(url) == outlet


@pytest.mark.parametrize(
    ("url", "day"),
    [
        ("https://example.com/2024/01/05/story", "2024-01-05"),
        ("https://example.com/news/2024/1/5/story.html", "2024-01-05"),
        ("https://example.com/2024-01-05-story-title", "2024-01-05"),
        ("https://example.com/news/20240105/story", "2024-01-05"),
        ("https://example.com/news/story_20240105", None),
        ("https://example.com/news/20240105", "2024-01-05"),
        ("https://example.com/2024/13/45/story", None),
        ("https://example.com/news/20241345/story", None),
        ("https://example.com/news/12345678/story", None),
        ("https://example.com/story?date=20240105", None),
        ("https://example.com/story", None),
    ],
)
def test_date_from_url(url: str, day: str | None) -> None:
    assert date_from_url(url) == day


@pytest.mark.parametrize(
    ("value", "day"),
    [
        (date(2024, 1, 5), "2024-01-05"),
        (datetime(2024, 1, 5, 23, 59), "2024-01-05"),
        ("2024-01-05", "2024-01-05"),
        ("2024/01/05", "2024-01-05"),
        ("2024-1-5", "2024-01-05"),
        ("2024-01-05T10:30:00Z", "2024-01-05"),
        ("January 5, 2024", "2024-01-05"),
        ("5 January 2024", "2024-01-05"),
        ("Fri, 05 Jan 2024 10:00:00 GMT", "2024-01-05"),
        (20240105, "2024-01-05"),
        (None, None),
        ("", None),
        ("not a date", None),
        ("2024-02-30", None),
        # Incomplete dates must not be completed with today's month or day.
        ("2024", None),
        ("January 2024", None),
        ("Tuesday", None),
        ("10:30", None),
    ],
)
def test_normalise_date(value: object, day: str | None) -> None:
    assert normalise_date(value) == day


def test_metadata_falls_back_to_the_url() -> None:
    article = make_article(
        "x", {"url": "https://edition.cnn.com/2024/01/05/world/story"}, "Body.", path="x.md"
    )
    assert article.source == "CNN"
    assert article.published == "2024-01-05"
    given = make_article(
        "x",
        {
            "url": "https://edition.cnn.com/2024/01/05/world/story",
            "source": "CNN International",
            "published": "2024-01-06",
        },
        "Body.",
        path="x.md",
    )
    assert given.source == "CNN International"
    assert given.published == "2024-01-06"


def test_make_article_without_text_raises() -> None:
    with pytest.raises(ArticleError, match="no text"):
        make_article("x.md", {"title": "T"}, "\n  \nRead more: elsewhere\n", path="x.md")


# --- promotion lines -----------------------------------------------------------------------

PROMO_EXAMPLES = [
    "Read Also: 5 things to know about the new tax",
    "Related stories: Flood closes library",
    "Join our WhatsApp channel for the latest news",
    "Open in App",
    "Sign up for our morning newsletter",
    "Follow us on Instagram",
    "Click here to read the full report",
    "Download our app for breaking news alerts",
    "ADVERTISEMENT",
]


def test_every_promo_pattern_has_an_example() -> None:
    assert len(PROMO_EXAMPLES) == len(PROMO_PATTERNS)
    for pattern, line in zip(PROMO_PATTERNS, PROMO_EXAMPLES, strict=True):
        assert re.fullmatch(pattern, line, re.IGNORECASE), (pattern, line)


@pytest.mark.parametrize("line", PROMO_EXAMPLES)
def test_promo_line_is_removed(line: str) -> None:
    assert is_promo_line(line)
    assert clean_text(f"First paragraph.\n{line}\nSecond paragraph.") == (
        "First paragraph.\nSecond paragraph."
    )
    assert clean_text(f"First paragraph.\n\n  {line}  \n\nSecond paragraph.") == (
        "First paragraph.\n\nSecond paragraph."
    )


@pytest.mark.parametrize(
    "line",
    [
        "Join the protest, the union told its members on Monday, after the talks with the "
        "transport ministry broke down for the third time; the union's channel of negotiation "
        "with the government has been closed since the strike in May, its leader said.",
        "Read also the small print, the regulator warned borrowers on Tuesday, because many "
        "of the new loans carry fees that are only mentioned at the end of the contract and "
        "can double the cost of borrowing for families with low incomes.",
        "Joining the talks, the minister said the group would meet again in June.",
        "Readers of the newsletter raised 4,000 dollars for the shelter.",
        "Follow-up inspections found no further damage to the bridge.",
    ],
)
def test_real_sentences_are_kept(line: str) -> None:
    assert line.startswith(("Join", "Read", "Follow"))
    assert not is_promo_line(line)
    assert clean_text(f"Intro.\n{line}\nOutro.") == f"Intro.\n{line}\nOutro."


def test_long_lines_are_never_promo() -> None:
    line = "Join our WhatsApp channel " + "and hear the news " * 12
    assert len(line) > PROMO_MAX_CHARS
    assert clean_text(line) == line.strip()


def test_clean_text_normalises_whitespace() -> None:
    text = "\r\n  \r\nTitle\r\n\r\n\r\n\r\nBody line.   \rLast line.\n\n\n"
    assert clean_text(text) == "Title\n\nBody line.\nLast line."


# --- content hash --------------------------------------------------------------------------


def test_content_hash_is_stable_and_follows_content(tmp_path: Path) -> None:
    write_article(tmp_path, "a.md", BRIDGE_BODY, title="Bridge approved")
    write_text(tmp_path, "b.jsonl", jsonl([record(1)]))
    first = {a.id: a.content_hash for a in scan_corpus(tmp_path).articles}
    again = {a.id: a.content_hash for a in scan_corpus(tmp_path).articles}
    assert first == again
    assert len(set(first.values())) == 2

    write_article(tmp_path, "a.md", BRIDGE_BODY + " It will be red.", title="Bridge approved")
    text_changed = by_id(scan_corpus(tmp_path))["a.md"].content_hash
    write_article(tmp_path, "a.md", BRIDGE_BODY, title="Harbour bridge approved")
    title_changed = by_id(scan_corpus(tmp_path))["a.md"].content_hash
    write_article(tmp_path, "a.md", BRIDGE_BODY, title="Bridge approved")
    back = by_id(scan_corpus(tmp_path))["a.md"].content_hash
    assert len({first["a.md"], text_changed, title_changed}) == 3
    assert back == first["a.md"]
    assert by_id(scan_corpus(tmp_path))["rec-1"].content_hash == first["rec-1"]


# --- problems that do not stop the scan ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("report.pdf", b"%PDF-1.4 not supported", "unsupported file type"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file (a PNG image)"),
        ("photo.md", b"\xff\xd8\xff\xe0 JFIF", "binary file (a JPEG image)"),
        ("paper.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "binary file (a PDF document)"),
        ("noise.txt", bytes(range(256)) * 16, "binary file (NUL bytes)"),
        ("noise-no-nul.txt", bytes(range(1, 256)) * 16, "binary"),
        (
            "controls.md",
            b"\x01\x02\x03 text \x04\x05\x06 " * 40,
            "binary file (control characters)",
        ),
        ("feed.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file (a PNG image)"),
        ("dump.jsonl", bytes(range(256)) * 16, "binary file (NUL bytes)"),
        ("odd.txt", codecs.BOM_UTF16_LE + b"a\x00b", "not valid UTF-16 text"),
        ("toml.md", b'+++\ntitle = "unclosed\n+++\nBody.\n', "broken TOML front matter"),
        (
            "toml-unclosed.md",
            b"+++\ntitle = 'Never closed'\nBody.\n",
            "opened with '+++' but never",
        ),
        ("broken.md", b"---\ntitle: [unclosed\nsource: x\n---\nBody.\n", "broken YAML"),
        ("list.md", b"---\n- a\n- b\n---\nBody.\n", "not a YAML mapping"),
        ("unclosed.md", b"---\ntitle: Never closed\n\nBody text follows.\n", "never closed"),
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n\t\n", "empty file (only whitespace)"),
        ("empty.html", b"", "empty file"),
        ("empty.json", b"", "empty file"),
        ("empty.jsonl", b"", "empty file"),
        ("blank.jsonl", b"\n\n  \n", "empty file (only whitespace)"),
        ("empty.jsonl.gz", gzip.compress(b""), "empty file"),
        ("only-front.md", b"---\ntitle: Nothing else\n---\n", "no text"),
        ("only-promo.txt", b"Read more: our top stories\nADVERTISEMENT\n", "no text"),
    ],
)
def test_bad_file_is_a_problem_and_the_scan_goes_on(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    write_article(tmp_path, "good/before.md", BRIDGE_BODY, title="Before")
    write_bytes(tmp_path, f"good/{name}", data)
    write_article(tmp_path, "good/zzz-after.md", BRIDGE_BODY, title="After")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["good/before.md", "good/zzz-after.md"]
    problem = problem_at(scan, f"good/{name}")
    assert reason in problem.reason
    assert str(problem).startswith(f"good/{name}: ")
    assert scan.failed_paths == {f"good/{name}"}


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (
            "Café owners welcome São Paulo’s new street rules\n\n"
            "José Peña, who runs a café near the cathedral, said the rules were “a relief”.\n",
            "cp1252",
        ),
        (
            "Señor Peña visited the café in São Paulo.\n\n"
            "He said the coffee was excellent and the prices were fair.\n",
            "latin-1",
        ),
        (
            "Müller says the Straße will close for a week.\n\nShops expect fewer customers.\n",
            "cp1252",
        ),
    ],
)
def test_legacy_encoded_file_decodes(tmp_path: Path, text: str, encoding: str) -> None:
    write_bytes(tmp_path, "legacy.txt", text.encode(encoding))
    article = only_article(scan_corpus(tmp_path))
    assert article.text == text.strip()
    assert article.title == text.splitlines()[0]


def test_decode_text() -> None:
    assert decode_text("\ufeffcafé".encode(), "x") == "café"
    with pytest.raises(ArticleError, match="binary"):
        decode_text(b"abc\x00def", "x")


UNICODE_STORY = (
    "---\ntitle: Café owners welcome São Paulo’s rules\n---\n"
    "José Peña, who runs a café near the cathedral, said the rules were “a relief”.\n"
)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_unicode_encodings_with_or_without_bom_decode(tmp_path: Path, encoding: str) -> None:
    # "utf-16" and "utf-32" write a BOM; "utf-16-le" and "utf-16-be" write none.
    write_bytes(tmp_path, "story.md", UNICODE_STORY.encode(encoding))
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "Café owners welcome São Paulo’s rules"
    assert article.text == UNICODE_STORY.split("---\n")[2].strip()


def test_short_legacy_text_is_not_taken_for_utf16(tmp_path: Path) -> None:
    # An even number of cp1252 bytes: charset-normalizer alone reads it as UTF-16 (CJK).
    write_bytes(tmp_path, "short.txt", "Café de Paris\n".encode("cp1252"))
    assert only_article(scan_corpus(tmp_path)).text == "Café de Paris"


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_jsonl_in_another_encoding_decodes(tmp_path: Path, encoding: str) -> None:
    records = [record(1, title="Café reopens in São Paulo"), record(2, text="Señor Peña spoke.")]
    write_bytes(tmp_path, "feed.jsonl", jsonl(records).encode(encoding))
    scan = scan_corpus(tmp_path)
    assert scan.problems == [], [str(p) for p in scan.problems]
    assert [a.title for a in scan.articles] == ["Café reopens in São Paulo", "Story number 2"]
    assert scan.articles[1].text == "Señor Peña spoke."


def test_one_legacy_encoded_jsonl_line_leaves_the_utf8_lines_intact(tmp_path: Path) -> None:
    utf8 = jsonl([record(1, title="Café in Zürich"), record(3, title="Ölpreis steigt")])
    lines = utf8.encode("utf-8").splitlines(keepends=True)
    legacy = jsonl([record(2, title="Señor Peña’s café")]).encode("cp1252")
    write_bytes(tmp_path, "feed.jsonl", lines[0] + legacy + lines[1])
    scan = scan_corpus(tmp_path)
    assert scan.problems == [], [str(p) for p in scan.problems]
    assert [a.title for a in scan.articles] == [
        "Café in Zürich",
        "Señor Peña’s café",
        "Ölpreis steigt",
    ]


def test_a_binary_jsonl_line_skips_that_line_only(tmp_path: Path) -> None:
    data = jsonl([record(1)]) + '{"id": "rec-2", "text": "x\x00y"}\n' + jsonl([record(3)])
    write_bytes(tmp_path, "feed.jsonl", data.encode("utf-8"))
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["rec-1", "rec-3"]
    assert "binary" in problem_at(scan, "feed.jsonl:2").reason
    assert scan.failed_paths == {"feed.jsonl"}


def test_text_starting_with_dashes_is_not_front_matter(tmp_path: Path) -> None:
    write_text(tmp_path, "rule.txt", "----------\nBridge opens\n\nThe bridge opened today.\n")
    assert only_article(scan_corpus(tmp_path)).text.startswith("----------\nBridge opens")


def test_toml_front_matter_gives_metadata(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "bridge.md",
        '+++\ntitle = "Council approves harbour bridge"\nsource = "Riverton Gazette"\n'
        "published = 2024-03-14\n+++\n" + BRIDGE_BODY + "\n",
    )
    article = only_article(scan_corpus(tmp_path))
    assert article.title == "Council approves harbour bridge"
    assert article.source == "Riverton Gazette"
    assert article.published == "2024-03-14"
    assert article.text == BRIDGE_BODY


# --- files too large -----------------------------------------------------------------------


def test_a_60_mb_file_is_refused_without_being_read(tmp_path: Path) -> None:
    size = 60 * MB
    assert size > MAX_ARTICLE_BYTES
    line = b"All work and no play makes a very long article.\n"
    megabyte = (line * (MB // len(line) + 1))[:MB]
    write_article(tmp_path, "before.md", BRIDGE_BODY, title="Before")
    with (tmp_path / "huge.txt").open("wb") as huge:
        for _ in range(size // MB):
            huge.write(megabyte)
    write_article(tmp_path, "zzz-after.md", BRIDGE_BODY, title="After")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["before.md", "zzz-after.md"]
    reason = problem_at(scan, "huge.txt").reason
    assert reason == (
        f"file too large (60.0 MB, over newsbot's {MAX_ARTICLE_BYTES // MB} MB limit "
        "for an article file)"
    )
    assert scan.failed_paths == {"huge.txt"}


SMALL = FileLimits(article_bytes=1_000, collection_bytes=5_000)


def test_a_jsonl_line_over_the_article_limit_skips_that_line(tmp_path: Path) -> None:
    write_text(tmp_path, "feed.jsonl", jsonl([record(1), record(2, text="big " * 400), record(3)]))
    scan = scan_corpus(tmp_path, limits=SMALL)
    assert [a.id for a in scan.articles] == ["rec-1", "rec-3"]
    assert "line too large" in problem_at(scan, "feed.jsonl:2").reason


def test_a_json_record_over_the_article_limit_is_skipped(tmp_path: Path) -> None:
    write_text(tmp_path, "many.json", json.dumps([record(1), record(2, text="big " * 400)]))
    scan = scan_corpus(tmp_path, limits=SMALL)
    assert [a.id for a in scan.articles] == ["rec-1"]
    assert "'text' too large" in problem_at(scan, "many.json[1]").reason


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.jsonl.gz"])
def test_a_collection_over_its_limit_is_refused(tmp_path: Path, name: str) -> None:
    data = jsonl([record(n) for n in range(60)]).encode()
    assert len(data) > SMALL.collection_bytes
    write_bytes(tmp_path, name, gzip.compress(data) if name.endswith(".gz") else data)
    write_text(tmp_path, "ok.md", "Fine story\n\nIt is short.")
    scan = scan_corpus(tmp_path, limits=SMALL)
    assert [a.id for a in scan.articles] == ["ok.md"]
    reason = problem_at(scan, name).reason
    assert "file too large" in reason and "limit for a JSON/JSONL file" in reason
    if name.endswith(".gz"):
        assert "once gunzipped" in reason


# --- the reader registry -------------------------------------------------------------------


def test_an_unsupported_file_names_the_supported_suffixes(tmp_path: Path) -> None:
    write_text(tmp_path, "report.pdf", "Not read.")
    assert problem_at(scan_corpus(tmp_path), "report.pdf").reason == (
        "unsupported file type (expected .md, .markdown, .txt, .html, .htm, "
        ".json, .jsonl, .jsonl.gz, .json.gz)"
    )


def read_lines(path: Path, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    """A made-up format of one story a line."""
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        yield f"{rel}:{n}", make_article(f"{rel}:{n}", {}, line, path=rel)


@pytest.mark.parametrize("collection", [True, False])
def test_a_new_format_is_one_more_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collection: bool
) -> None:
    monkeypatch.setitem(READERS, ".feed", Reader(read_lines, "a feed", collection=collection))
    stories = [f"Story {n} of the feed" for n in range(60)]
    data = "".join(line + "\n" for line in stories)
    assert SMALL.article_bytes < len(data) < SMALL.collection_bytes
    write_text(tmp_path, "News.FEED", data)
    scan = scan_corpus(tmp_path, limits=SMALL)
    if collection:
        assert [a.title for a in scan.articles] == stories
        assert scan.articles[0].id == "News.FEED:1"
    else:
        assert scan.articles == []
        assert "limit for a feed" in problem_at(scan, "News.FEED").reason


def test_the_longest_suffix_picks_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(READERS, ".gz", Reader(read_lines))
    write_bytes(tmp_path, "feed.jsonl.gz", gzip.compress(jsonl([record(1)]).encode()))
    write_bytes(tmp_path, "notes.gz", gzip.compress(b"The library reopened.\n"))
    scan = scan_corpus(tmp_path)
    assert scan.problems == []
    assert [a.id for a in scan.articles] == ["rec-1", "notes.gz:1"]


# --- files that cannot be read -------------------------------------------------------------

needs_non_root = pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads files and folders whatever their permissions"
)


def scan_within(root: Path, seconds: float = 10.0) -> CorpusScan:
    """`scan_corpus(root)`, failing instead of hanging if it blocks (on a named pipe, say)."""
    done: list[CorpusScan] = []
    worker = threading.Thread(target=lambda: done.append(scan_corpus(root)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert done, f"scan_corpus({root}) still running after {seconds} s"
    return done[0]


def test_a_named_pipe_is_skipped_not_waited_on(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "Story A\n\nText.")
    os.mkfifo(tmp_path / "pipe.txt")
    try:
        scan = scan_within(tmp_path)
    finally:
        with contextlib.suppress(OSError):  # release a reader blocked on the pipe
            os.close(os.open(tmp_path / "pipe.txt", os.O_WRONLY | os.O_NONBLOCK))
    assert [a.id for a in scan.articles] == ["a.md"]
    assert problem_at(scan, "pipe.txt").reason == "not a regular file (a named pipe)"
    assert scan.failed_paths == {"pipe.txt"}


@needs_non_root
def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "Story A\n\nText.")
    locked = write_text(tmp_path, "locked.md", "Story B\n\nText.")
    locked.chmod(0)
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["a.md"]
    assert problem_at(scan, "locked.md").reason == "cannot read file: Permission denied"
    assert scan.failed_paths == {"locked.md"}


@needs_non_root
def test_a_folder_that_cannot_be_listed_is_a_problem(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "Story A\n\nText.")
    write_text(tmp_path, "locked/b.md", "Story B\n\nText.")
    write_text(tmp_path, "z.md", "Story Z\n\nText.")
    (tmp_path / "locked").chmod(0)
    try:
        scan = scan_corpus(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert [a.id for a in scan.articles] == ["a.md", "z.md"]
    assert problem_at(scan, "locked").reason == "cannot list folder: Permission denied"
    assert scan.failed("locked/b.md") and not scan.failed("a.md")


@needs_non_root
def test_a_corpus_folder_that_cannot_be_listed_is_a_corpus_error(tmp_path: Path) -> None:
    write_text(tmp_path, "corpus/a.md", "Story A\n\nText.")
    (tmp_path / "corpus").chmod(0)
    try:
        with pytest.raises(CorpusError, match="cannot read the corpus folder"):
            scan_corpus(tmp_path / "corpus")
    finally:
        (tmp_path / "corpus").chmod(0o755)


def test_broken_and_looping_symlinks_are_problems(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "Story A\n\nText.")
    (tmp_path / "dangling.md").symlink_to("gone.md")
    (tmp_path / "loop-1.md").symlink_to("loop-2.md")
    (tmp_path / "loop-2.md").symlink_to("loop-1.md")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["a.md"]
    assert problem_at(scan, "dangling.md").reason == (
        "broken symlink: its target gone.md does not exist"
    )
    for name in ("loop-1.md", "loop-2.md"):
        assert problem_at(scan, name).reason.startswith("symlink loop")
    assert scan.failed_paths == {"dangling.md", "loop-1.md", "loop-2.md"}


def test_a_folder_symlink_loop_is_reported_once_and_not_followed(tmp_path: Path) -> None:
    write_text(tmp_path, "world/a.md", "Story A\n\nText.")
    (tmp_path / "world" / "again").symlink_to("..")
    (tmp_path / "world" / "self").symlink_to(".")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["world/a.md"]
    for name in ("world/again", "world/self"):
        assert problem_at(scan, name).reason.startswith("symlink loop: it points back")
    assert len(scan.problems) == 2


def test_a_symlinked_folder_elsewhere_is_skipped(tmp_path: Path) -> None:
    write_text(tmp_path, "archive/b.md", "Story B\n\nText.")
    write_text(tmp_path, "corpus/a.md", "Story A\n\nText.")
    (tmp_path / "corpus" / "archive").symlink_to(tmp_path / "archive")
    scan = scan_corpus(tmp_path / "corpus")
    assert [str(p) for p in scan.problems] == [
        f"archive: symlink leads outside the corpus ({tmp_path / 'archive'})"
    ]
    assert [a.id for a in scan.articles] == ["a.md"]
    assert not scan.failed("archive/b.md")  # nothing indexed through it is kept


def test_a_symlink_inside_the_corpus_is_read(tmp_path: Path) -> None:
    write_text(tmp_path, "2024/11/a.md", "Story A\n\nText.")
    (tmp_path / "latest").symlink_to("2024/11")
    (tmp_path / "top.md").symlink_to("2024/11/a.md")
    scan = scan_corpus(tmp_path)
    assert scan.problems == []
    assert [a.id for a in scan.articles] == ["top.md", "2024/11/a.md", "latest/a.md"]


def test_a_file_name_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    write_text(tmp_path, "a.md", "Story A\n\nText.")
    name = os.fsencode(tmp_path) + b"/caf\xe9.md"
    with open(name, "wb") as handle:
        handle.write(b"Story B\n\nText.")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["a.md"]
    assert (
        str(problem_at(scan, "caf\ufffd.md")) == "caf\ufffd.md: file name is not UTF-8: rename it"
    )


def test_every_problem_is_one_line(tmp_path: Path) -> None:
    write_bytes(tmp_path, "two\nlines.txt", b"\x00binary")
    write_text(tmp_path, "broken.md", "---\ntitle: [oops\n---\nBody\n")
    scan = scan_corpus(tmp_path)
    assert len(scan.problems) == 2
    for problem in scan.problems:
        assert "\n" not in str(problem) and "\r" not in str(problem)
    assert problem_at(scan, "two\\nlines.txt").reason.startswith("binary")


# --- the same id in two files --------------------------------------------------------------


def test_the_indexed_copy_of_a_duplicate_id_wins(tmp_path: Path) -> None:
    write_text(tmp_path, "a-new.jsonl", jsonl([record(2, title="Newcomer"), record(4)]))
    write_text(tmp_path, "b.jsonl", jsonl([record(1), record(2)]))
    scan = scan_corpus(tmp_path, indexed_paths={"rec-2": "b.jsonl"})
    assert [a.id for a in scan.articles] == ["rec-2", "rec-4", "rec-1"]
    assert by_id(scan)["rec-2"].path == "b.jsonl"
    assert by_id(scan)["rec-2"].title == "Story number 2"
    dup = problem_at(scan, "a-new.jsonl:1")
    assert dup.reason == "duplicate article id 'rec-2' (the index has it from b.jsonl:2)"
    assert dup.path == "a-new.jsonl"


def test_missing_corpus_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        scan_corpus(tmp_path / "missing")


def test_a_single_file_is_a_corpus_of_its_articles(tmp_path: Path) -> None:
    write_text(tmp_path, "file.md", "Not a folder, one article.")
    scan = scan_corpus(tmp_path / "file.md")
    assert [a.id for a in scan.articles] == ["file.md"]


# --- walking the folder --------------------------------------------------------------------

CORPUS_LAYOUT = [
    "z-last.md",
    "a-first.txt",
    "world/europe/paris.md",
    "world/asia.md",
    "local/feed.jsonl",
    ".draft.md",
    ".git/HEAD.md",
    "world/.cache/copy.md",
    "local/.hidden.txt",
]


def build_layout(root: Path, names: list[str]) -> None:
    for name in names:
        if name.endswith(".jsonl"):
            write_text(root, name, jsonl([record(1)]))
        else:
            write_article(root, name, f"Story from {name}.", title=name)


def test_hidden_files_are_ignored_and_nested_folders_read(tmp_path: Path) -> None:
    build_layout(tmp_path, CORPUS_LAYOUT)
    scan = scan_corpus(tmp_path)
    assert scan.problems == []
    assert {a.path for a in scan.articles} == {
        "z-last.md",
        "a-first.txt",
        "world/europe/paris.md",
        "world/asia.md",
        "local/feed.jsonl",
    }


def test_order_is_stable_and_independent_of_creation_order(tmp_path: Path) -> None:
    build_layout(tmp_path / "one", CORPUS_LAYOUT)
    build_layout(tmp_path / "two", list(reversed(CORPUS_LAYOUT)))
    order = [a.id for a in scan_corpus(tmp_path / "one").articles]
    assert order == [a.id for a in scan_corpus(tmp_path / "one").articles]
    assert order == [a.id for a in scan_corpus(tmp_path / "two").articles]
    assert order.index("a-first.txt") < order.index("z-last.md")
    assert order.index("world/asia.md") < order.index("world/europe/paris.md")
