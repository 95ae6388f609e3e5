"""What a hostile site can put in front of newsbot's parsers: markup that takes the parsers
hours (an element with tens of thousands of attributes), a feed's DOCTYPE entities (a file
of the machine, a billion laughs), and header values that cannot be sent back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

from index.ingest.corpus.scan import scan_corpus
from index.ingest.markup import MAX_ATTRIBUTES, markup_problem
from index.ingest.web.addresses import AddressPolicy
from index.ingest.web.fetcher import FetchPolicy, fetch_all
from index.ingest.web.folder import url_key
from index.ingest.web.sync import sync_feeds
from index.settings import Settings
from tests.bombs import NEWSBOT
from tests.test_add import LONG, page
from tests.test_feeds import FULL_TEXT, RSS_TYPE, cli, feed, item, rss, web_files
from tests.web_server import Reply, WebServer

# 30,000 attributes on one element: 300 KB, within any size limit; lxml alone took 5 s to
# parse them, trafilatura 20 (the time grows with their square: 5 MB of them, hours).
ATTRIBUTES = " ".join(f"a{n}='x'" for n in range(30_000))
TOO_MANY = "an element with 30,000 attributes (newsbot reads at most 1,000): not parsed"
LOOPBACK = FetchPolicy(addresses=AddressPolicy.allowing(["127.0.0.1"]), backoff=0.01, timeout=2)


def test_a_page_with_an_element_of_30000_attributes_is_one_line(
    web: WebServer, fetching: Path
) -> None:
    html = page("Ferry terminal to open in June", LONG, LONG).replace(
        "<article>", f"<article {ATTRIBUTES}>"
    )
    url = web.page("/news/attributes", html)

    code, stdout, stderr = cli("add", url, "--no-index")

    assert code == 1 and stdout == ""
    assert stderr == f"failed {url}: {TOO_MANY}\n"


def test_a_feed_with_an_element_of_30000_attributes_is_one_line(
    web: WebServer, fetching: Path
) -> None:
    xml = rss(item("/news/a", "A")).replace("<item>", f"<item {ATTRIBUTES}>")
    url = feed(web, "/rss.xml", xml)
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n")

    code, _, stderr = cli("sync", "--no-index")

    assert code == 1 and stderr == f"failed feed {url}: {TOO_MANY}\n"
    assert web.hits("/news/a") == 0


def test_a_corpus_html_file_with_an_element_of_30000_attributes_is_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "hostile.html").write_text(f"<html><body><p {ATTRIBUTES}>{LONG}</p></body></html>")
    (tmp_path / "fine.html").write_text(
        f"<html><body><article><p>{LONG}</p></article></body></html>"
    )

    scan = scan_corpus(tmp_path)

    assert [a.id for a in scan.articles] == ["fine.html"]
    assert [(p.path, p.reason) for p in scan.problems] == [("hostile.html", TOO_MANY)]


def test_the_attribute_count_reads_quotes_and_is_quick_on_anything() -> None:
    ok = "<div class='a b c' data-x=\"1 > 2 < 3\" hidden>" + "<p id=p>text</p>" * 100_000
    many = "<div " + " ".join(f"a{n}='>'" for n in range(MAX_ATTRIBUTES + 1)) + ">"
    big_value = "<div data-page='" + '{"a": 1, "b": [2, 3]} ' * 200_000 + "'>"

    assert markup_problem(ok) is None and markup_problem(big_value) is None
    assert markup_problem(many) == (
        "an element with 1,001 attributes (newsbot reads at most 1,000): not parsed"
    )
    assert markup_problem(many.encode("utf-8")) == markup_problem(many)


# --- a feed's DOCTYPE: no entity is ever expanded ---------------------------------------------

LAUGHS = "".join(
    f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
)  # &lol9; would be a billion "lol"s: 3 GB


def test_a_feeds_entities_never_read_a_file_nor_blow_up(
    web: WebServer, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD-LINE")
    doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}"><!ENTITY lol0 "lol">{LAUGHS}]>'
    xml = rss(
        item("/news/xxe", "&xxe; &lol9;", content=f"&xxe; &lol9; {FULL_TEXT}"),
        item("/news/ferry", "Ferry &lol9;"),
    ).replace("<rss", f"{doctype}<rss", 1)
    web.page("/news/xxe", page("Ferry terminal to open in June &xxe;", LONG, LONG))
    web.page("/news/ferry", page("Ferry terminal to open in June", LONG, LONG))
    url = feed(web, "/rss.xml", xml)
    (settings.corpus_dir / "feeds.yaml").write_text(f"- url: {url}\n")

    tracemalloc.start()
    try:
        report = sync_feeds(settings, policy=LOOPBACK)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [(p.failed, p.entries) for p in report.feeds] == [(False, 2)]
    written = "".join(web_files(settings.corpus_dir).values())
    assert "TOP-SECRET" not in written and "lollol" not in written
    assert all("TOP-SECRET" not in (a.reason or "") for a in report.articles)
    assert peak < 100_000_000, peak


# --- header values that cannot be sent back ----------------------------------------------------


def newsbot_sync(env_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(NEWSBOT), "sync", "--no-index"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        cwd=env_dir,
    )


def test_an_etag_that_is_not_ascii_is_not_sent_back(
    web: WebServer, fetching: Path, env: Path, tmp_path: Path
) -> None:
    # Kept in feeds.json and sent back, it made every later sync a UnicodeEncodeError
    # traceback (the bot's scheduled sync too, at every run).
    url = web.route(
        "/rss.xml",
        Reply(
            body=rss(),
            content_type=RSS_TYPE,
            headers={"ETag": '"caf\xe9"', "Last-Modified": "\xff"},
        ),
    )
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n")

    runs = [newsbot_sync(tmp_path) for _ in range(2)]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stderr == "" and run.stdout.endswith("0 already in the corpus\n")
    assert web.hits("/rss.xml") == 2
    assert "if-none-match" not in web.last("/rss.xml").headers


def test_a_hand_edited_etag_that_cannot_be_sent_is_left_out(
    web: WebServer, fetching: Path, env: Path
) -> None:
    url = feed(web, "/rss.xml", rss())
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n")
    env.mkdir(parents=True, exist_ok=True)
    (env / "feeds.json").write_text(
        json.dumps({url_key(url): {"etag": "caf\u00e9\n", "last_modified": "x" * 5000}})
    )

    code, _, stderr = cli("sync", "--no-index")

    assert code == 0, stderr
    assert {"if-none-match", "if-modified-since"}.isdisjoint(web.last("/rss.xml").headers)


def test_a_retry_after_of_400_digits_is_forever() -> None:
    from index.ingest.web.headers import wait_text

    assert [wait_text(s) for s in (float("9" * 400), 3 * 86_400, 3600)] == [
        "forever",
        "3 days",
        "3600 s",
    ]


def test_a_retry_after_of_400_digits_fails_the_page_in_words(web: WebServer) -> None:
    url = web.route("/busy", Reply(429, headers={"Retry-After": "9" * 400}))

    [result] = fetch_all([url], LOOPBACK)

    assert result.reason == (
        "HTTP 429 (Too Many Requests): the site asks to wait forever before trying again, "
        "longer than newsbot waits (60 s)"
    )
