"""Addresses that carry a user name or password (`https://user:secret@host/`): refused for
`newsbot add`, `feeds add`, a feed's entries and a redirect, without a request, and the
password never printed, logged or written into the corpus."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import log_sync
from index.build.reindex import IndexReport
from index.build.schedule import Synced
from index.errors import PageError
from index.ingest.web.add import Added
from index.ingest.web.addresses import has_credentials
from index.ingest.web.feedlist import Feed
from index.ingest.web.fetcher import CREDENTIALS, FetchOutcome
from index.ingest.web.sync import Polled, SyncReport
from index.redaction import without_passwords
from tests.test_feeds import FULL_TEXT, STORY, cli, feed, item, rss, web_files
from tests.web_server import WebServer

SECRET = "s3cret-pw"


def with_password(url: str, user: str = "ana") -> str:
    """`url` with a user name and `SECRET` as its password."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{SECRET}@{rest}"


def masked(url: str, user: str = "ana") -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:***@{rest}"


def corpus_text(corpus: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in corpus.rglob("*") if p.is_file())


def test_add_refuses_an_address_with_a_password_without_sending_it(
    web: WebServer, fetching: Path
) -> None:
    url = web.page("/news/bridge", STORY)
    token = url.replace("://", "://tok3n@")

    code, stdout, stderr = cli("add", with_password(url), token, "--no-index")

    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [
        f"failed {masked(url)}: {CREDENTIALS}",
        f"failed {url.replace('://', '://***@')}: {CREDENTIALS}",
    ]
    assert web.requests == []
    assert SECRET not in corpus_text(fetching) and not (fetching / "web").exists()


def test_a_redirect_to_an_address_with_a_password_is_not_followed(
    web: WebServer, fetching: Path
) -> None:
    target = with_password(web.page("/news/bridge", STORY))
    url = web.redirect("/old", target)

    code, _, stderr = cli("add", url, "--no-index")

    assert code == 1
    assert stderr == f"failed {url}: {CREDENTIALS}: {masked(web.url('/news/bridge'))}\n"
    assert web.hits("/news/bridge") == 0
    assert SECRET not in corpus_text(fetching)


def test_feeds_add_refuses_an_address_with_a_password(web: WebServer, fetching: Path) -> None:
    url = feed(web, "/rss.xml", rss())

    code, stdout, stderr = cli("feeds", "add", with_password(url))

    assert code == 1 and stdout == ""
    assert stderr == f"error: {masked(url)}: {CREDENTIALS}\n"
    assert web.requests == [] and not (fetching / "feeds.yaml").exists()


def test_a_feeds_entries_with_passwords_are_refused_and_never_written(
    web: WebServer, fetching: Path
) -> None:
    # One entry carries its whole text (no page to fetch), one is a page to fetch.
    full_text = with_password(web.url("/news/ferry"))
    page = with_password(web.page("/news/bridge", STORY), user="bob")
    url = feed(
        web,
        "/rss.xml",
        rss(item(full_text, "Ferry", content=FULL_TEXT), item(page, "Bridge")),
    )
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n", encoding="utf-8")

    code, stdout, stderr = cli("sync", "--no-index")

    assert code == 1
    assert stderr.splitlines() == [
        f"failed {masked(web.url('/news/ferry'))}: {CREDENTIALS}",
        f"failed {masked(web.url('/news/bridge'), user='bob')}: {CREDENTIALS}",
    ]
    assert SECRET not in stdout
    assert web_files(fetching) == {} and web.hits("/news/bridge") == 0


def test_a_feed_listed_by_hand_with_a_password_is_refused_and_never_shown(
    web: WebServer, fetching: Path
) -> None:
    url = feed(web, "/rss.xml", rss())
    (fetching / "feeds.yaml").write_text(f"- url: {with_password(url)}\n", encoding="utf-8")

    sync = cli("sync", "--no-index")
    listed = cli("feeds", "list")

    assert sync[0] == 1 and sync[2] == f"failed feed {masked(url)}: {CREDENTIALS}\n"
    assert listed[1].startswith(f"{masked(url)} (last fetched ")
    assert SECRET not in sync[1] + listed[1] + listed[2]
    assert web.requests == []


def test_the_bots_log_of_a_sync_masks_passwords(caplog: pytest.LogCaptureFixture) -> None:
    url = with_password("https://example.com/rss.xml")
    report = SyncReport(
        feeds=[Polled(Feed(url), FetchOutcome.FAILED, reason=f"redirect to {url}")],
        articles=[Added(with_password("https://example.com/a"), None, reason=CREDENTIALS)],
    )

    with caplog.at_level(logging.WARNING):
        log_sync(Synced(report, IndexReport()))

    assert SECRET not in caplog.text
    assert masked("https://example.com/a") in caplog.text


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://ana:pw@example.com/", True),
        ("https://token@example.com/", True),
        ("https://ana:p@ss@example.com/", True),
        ("https://ana:pw@[::1", True),  # not even an address: still refused
        ("https://example.com/a@b", False),
        ("https://example.com/?to=a@b.com", False),
        ("mailto:ana@example.com", False),
    ],
)
def test_credentials_are_found_however_the_address_is_written(url: str, carries: bool) -> None:
    assert has_credentials(url) is carries


def test_a_page_error_never_shows_a_password() -> None:
    error = PageError(
        with_password("https://example.com/a"), f"redirect to {with_password('http://x/')}"
    )

    assert SECRET not in str(error)
    assert str(error) == f"{masked('https://example.com/a')}: redirect to {masked('http://x/')}"
    assert (
        without_passwords("https://ana:p@ss@example.com/x@y") == "https://ana:***@example.com/x@y"
    )
