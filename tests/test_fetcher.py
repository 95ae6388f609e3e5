"""The fetcher against a scripted server on 127.0.0.1: what it fetches, what it refuses, how
politely it asks, and the one-line reason of every failure."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import time
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import zstandard

from index.ingest.web.addresses import AddressPolicy
from index.ingest.web.codings import PIECE
from index.ingest.web.fetcher import (
    Fetcher,
    FetchOutcome,
    FetchPolicy,
    FetchRequest,
    FetchResult,
    default_user_agent,
    fetch_all,
    retry_after,
)
from index.settings import Settings
from tests.bombs import gzip_bomb, zstd_bomb
from tests.web_server import Reply, WebServer

PAGE = "<html><head><title>A page</title></head><body><p>Some news.</p></body></html>"
LOOPBACK = AddressPolicy.allowing(["127.0.0.1"])


def policy(**changes: object) -> FetchPolicy:
    """Fast limits for tests; the test server's address allowed."""
    defaults: dict[str, object] = {"addresses": LOOPBACK, "backoff": 0.01, "timeout": 2.0}
    return FetchPolicy(**{**defaults, **changes})  # type: ignore[arg-type]


def fetch(url: str | FetchRequest, **changes: object) -> FetchResult:
    return fetch_all([url], policy(**changes))[0]


# --- fetched -----------------------------------------------------------------------------


def test_a_page_is_fetched_with_its_type_and_newsbots_name(web: WebServer) -> None:
    url = web.page("/story", PAGE, content_type="text/html; charset=ISO-8859-1")

    result = fetch(url)

    assert result.outcome is FetchOutcome.FETCHED and result.ok
    assert result.body == PAGE.encode()
    assert (result.status, result.content_type, result.charset) == (200, "text/html", "ISO-8859-1")
    assert result.final_url == url
    assert web.last("/story").headers["user-agent"] == default_user_agent()
    assert default_user_agent().startswith("newsbot/")
    assert web.last("/story").headers["accept"].startswith("text/html")


def test_the_user_agent_setting_is_sent(web: WebServer) -> None:
    url = web.page("/story", PAGE)
    settings = Settings(fetch_user_agent="newsbot/test (+ops@example.org)")

    fetch(url, user_agent=FetchPolicy.from_settings(settings).user_agent)

    assert web.last("/story").headers["user-agent"] == "newsbot/test (+ops@example.org)"


@pytest.mark.parametrize("agent", ["newsbot\r\nX-Injected: 1", "nëwsbot"])
def test_a_user_agent_that_is_no_header_value_is_refused(
    agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_FETCH_USER_AGENT", agent)

    with pytest.raises(ValueError, match="must be printable ASCII on one line"):
        Settings()


def test_text_is_decoded_by_the_header_charset_else_the_pages_own(web: WebServer) -> None:
    # 0xA4 is € in ISO-8859-15 and ¤ in Latin-1 and cp1252, which detection would guess.
    euro = "<html><body><p>Tickets cost 5 €, said the mayor of Zürich.</p></body></html>"
    data = euro.encode("iso-8859-15")
    by_header = web.route("/h", Reply(body=data, content_type="text/html; charset=iso-8859-15"))
    declared = b'<html><head><meta charset="iso-8859-15"></head>' + data[6:]
    by_meta = web.route("/m", Reply(body=declared, content_type="text/html"))

    header, meta = fetch_all([by_header, by_meta], policy())

    assert "cost 5 €, said the mayor of Zürich" in header.text()
    assert "cost 5 €, said the mayor of Zürich" in meta.text()


def test_results_come_in_the_order_asked(web: WebServer) -> None:
    slow = web.page("/slow", "<p>slow</p>", delay=0.3)
    fast = web.page("/fast", "<p>fast</p>")
    finished: list[str] = []

    results = fetch_all([slow, fast], policy(), on_result=lambda r: finished.append(r.url))

    assert [r.url for r in results] == [slow, fast]
    assert finished == [fast, slow]


def test_a_redirect_is_followed_to_the_page(web: WebServer) -> None:
    page = web.page("/new", PAGE)
    old = web.redirect("/old", "/new", status=301)

    result = fetch(old)

    assert result.ok
    assert (result.url, result.final_url, result.attempts) == (old, page, 2)


# --- conditional requests ------------------------------------------------------------------


def test_an_unchanged_page_is_not_sent_again(web: WebServer) -> None:
    stamp = "Sun, 17 Nov 2024 09:30:00 GMT"
    url = web.route("/feed", Reply(body=PAGE, etag='"v1"', last_modified=stamp))
    first = fetch(url)

    again = fetch(FetchRequest(url, etag=first.etag, last_modified=first.last_modified))
    by_date_only = fetch(FetchRequest(url, last_modified=first.last_modified))

    assert (first.etag, first.last_modified) == ('"v1"', stamp)
    assert again.outcome is FetchOutcome.NOT_MODIFIED and not again.ok
    assert (again.status, again.body, again.etag, again.last_modified) == (304, b"", '"v1"', stamp)
    assert web.requests[1].headers["if-none-match"] == '"v1"'
    assert web.requests[1].headers["if-modified-since"] == stamp
    assert by_date_only.outcome is FetchOutcome.NOT_MODIFIED


def test_a_changed_page_is_sent_with_its_new_etag(web: WebServer) -> None:
    url = web.route("/feed", Reply(body="<p>new</p>", etag='"v2"'))

    result = fetch(FetchRequest(url, etag='"v1"'))

    assert result.ok and result.body == b"<p>new</p>" and result.etag == '"v2"'


# --- failures: one line each, naming why --------------------------------------------------


def test_a_missing_page_fails_at_once(web: WebServer) -> None:
    result = fetch(web.url("/gone"))

    assert result.outcome is FetchOutcome.FAILED
    assert (result.reason, result.status, result.attempts) == ("HTTP 404 (Not Found)", 404, 1)
    assert result.error().args[0] == f"{web.url('/gone')}: HTTP 404 (Not Found)"


def test_a_server_error_is_tried_again_and_then_succeeds(web: WebServer) -> None:
    url = web.route("/flaky", Reply(500), Reply(body=PAGE))

    result = fetch(url)

    assert result.ok and result.body == PAGE.encode()
    assert result.attempts == 2 and web.hits("/flaky") == 2


def test_a_server_error_that_lasts_fails_after_the_retries(web: WebServer) -> None:
    url = web.route("/down", Reply(503))

    result = fetch(url, retries=2)

    assert result.reason == "HTTP 503 (Service Unavailable) (3 attempts)"
    assert web.hits("/down") == 3


def test_retries_wait_longer_each_time(web: WebServer) -> None:
    url = web.route("/down", Reply(502))

    fetch(url, retries=2, backoff=0.2)

    first, second, third = (seen.at for seen in web.requests)
    assert second - first >= 0.2
    assert third - second >= 0.4


def test_a_dropped_connection_is_tried_again(web: WebServer) -> None:
    url = web.route("/drop", Reply(drop=True), Reply(body=PAGE))

    result = fetch(url)

    assert result.ok and result.attempts == 2


def test_too_many_requests_waits_as_long_as_retry_after_asks(web: WebServer) -> None:
    url = web.route("/busy", Reply(429, headers={"Retry-After": "1"}), Reply(body=PAGE))

    result = fetch(url, backoff=0.01)

    first, second = (seen.at for seen in web.requests)
    assert result.ok
    assert second - first >= 0.95


def test_a_retry_after_longer_than_newsbot_waits_fails_the_page_at_once(web: WebServer) -> None:
    url = web.route("/busy", Reply(429, headers={"Retry-After": "2"}))

    result = fetch(url, max_retry_wait=1, retries=1)

    assert result.reason == (
        "HTTP 429 (Too Many Requests): the site asks to wait 2 s before trying again, "
        "longer than newsbot waits (1 s)"
    )
    assert web.hits("/busy") == 1


def test_retry_after_reads_seconds_and_dates() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)

    assert retry_after("7") == 7.0
    assert 100 < (retry_after(format_datetime(later, usegmt=True)) or 0) <= 120
    assert retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_slow_page_times_out(web: WebServer) -> None:
    url = web.page("/slow", PAGE, delay=3)
    started = time.monotonic()

    result = fetch(url, timeout=0.5, retries=0)

    assert result.reason == "timed out after 0.5 s"
    assert time.monotonic() - started < 2


def test_a_page_that_trickles_in_times_out_in_all(web: WebServer) -> None:
    # Each piece comes well within the timeout; the whole page does not.
    url = web.page("/trickle", "x" * 40, chunk=4, trickle=0.2)
    started = time.monotonic()

    result = fetch(url, timeout=0.8, retries=0)

    assert result.reason == "timed out after 0.8 s"
    assert time.monotonic() - started < 1.5


def test_an_oversized_page_is_refused_by_its_declared_length(web: WebServer) -> None:
    url = web.page("/big", "x" * 2_000_000)

    result = fetch(url, max_bytes=1_000_000)

    assert result.reason == "too large (over the 1 MB limit): 2.0 MB"
    assert result.body == b""


def test_an_oversized_page_without_a_length_is_read_no_further_than_the_limit(
    web: WebServer,
) -> None:
    url = web.route("/big", Reply(body=b"x" * 30_000_000, length=False))

    result = fetch(url, max_bytes=1_000_000)

    assert result.reason == "too large (over the 1 MB limit): stopped reading"
    assert not web.sent_whole_body("/big")


# --- content codings: decoded within the size limit, or refused ---------------------------


def decoding_peak(url: str, **changes: object) -> tuple[FetchResult, int]:
    """The result of fetching `url`, and the most memory Python held meanwhile (bytes)."""
    tracemalloc.start()
    try:
        result = fetch(url, **changes)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("coding", "bomb"),
    [("gzip", lambda: gzip_bomb(32)), ("zstd", lambda: zstd_bomb(256))],
    ids=["gzip", "zstd"],
)
def test_a_compression_bomb_is_decoded_no_further_than_the_limit(
    web: WebServer, coding: str, bomb: Callable[[], bytes]
) -> None:
    # A few KB that decode to 32 or 256 MB: httpx would decode a network chunk whole.
    url = web.route("/bomb", Reply(body=bomb(), headers={"Content-Encoding": coding}))

    result, peak = decoding_peak(url, max_bytes=1_000_000)

    assert result.reason == "too large (over the 1 MB limit): stopped reading"
    # The body up to the limit and a piece more, a copy of it, the network's chunks: not the
    # tens of MB the bomb expands to.
    assert peak < 4 * 1_000_000 + 4 * PIECE, peak


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "zstd", "gzip, gzip", "identity"])
def test_each_coding_sent_is_decoded(web: WebServer, coding: str) -> None:
    body = (PAGE * 2000).encode()
    encoders: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "deflate": zlib.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "identity": bytes,
    }
    encoded = body
    for step in coding.split(", "):
        encoded = encoders[step](encoded)
    url = web.route("/coded", Reply(body=encoded, headers={"Content-Encoding": coding}))

    result = fetch(url)

    assert result.ok, result.reason
    assert result.body == body


def test_only_the_codings_decoded_are_asked_for_and_others_are_refused(web: WebServer) -> None:
    url = web.route("/br", Reply(body=b"\x1b\x00", headers={"Content-Encoding": "br"}))

    result = fetch(url)

    assert web.last("/br").headers["accept-encoding"] == "gzip, deflate, zstd"
    assert result.reason == (
        "content encoded as 'br', which newsbot does not decode (it asks for gzip, deflate, zstd)"
    )


def test_a_body_that_is_not_in_its_coding_fails_in_one_line(web: WebServer) -> None:
    url = web.route("/lie", Reply(body=PAGE, headers={"Content-Encoding": "gzip"}))

    result = fetch(url)

    assert result.reason is not None and result.reason.startswith("undecodable gzip body (")
    assert "\n" not in result.reason


def test_a_pdf_is_skipped_with_its_type(web: WebServer) -> None:
    url = web.route("/report.pdf", Reply(body=b"%PDF-1.7 ...", content_type="application/pdf"))

    result = fetch(url)

    assert result.reason == "not a web page (application/pdf)"


def test_a_feed_request_accepts_feed_types(web: WebServer) -> None:
    url = web.route("/rss", Reply(body="<rss/>", content_type="application/rss+xml"))

    as_page = fetch(url)
    as_feed = fetch(FetchRequest(url, accept=("application/rss+xml",), kind="a feed"))

    assert as_page.reason == "not a web page (application/rss+xml)"
    assert as_feed.ok


def test_a_redirect_loop_is_named(web: WebServer) -> None:
    a = web.redirect("/a", "/b")
    b = web.redirect("/b", "/a")

    result = fetch(a)

    assert result.reason == f"redirect loop: {a} → {b} → {a}"
    assert web.hits("/a") == 1 and web.hits("/b") == 1


def test_redirects_are_followed_only_so_far(web: WebServer) -> None:
    for n in range(8):
        web.redirect(f"/{n}", f"/{n + 1}")
    web.page("/8", PAGE)

    too_far = fetch(web.url("/0"), max_redirects=5)
    followed = {seen.path for seen in web.requests}
    near_enough = fetch(web.url("/3"), max_redirects=5)

    assert too_far.reason == "too many redirects (more than 5)"
    assert followed == {"/0", "/1", "/2", "/3", "/4", "/5"}
    assert near_enough.ok


def test_a_redirect_without_location_fails(web: WebServer) -> None:
    url = web.route("/nowhere", Reply(302, content_type=None))

    assert fetch(url).reason == "HTTP 302 (Found) without a Location to go to"


# --- safety: where newsbot will not go ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/story", "file:///etc/passwd", "javascript:alert(1)", "example.com/story"],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    result = fetch(url)

    assert result.reason == "not an http or https address"
    assert result.attempts == 0


def test_a_redirect_to_another_scheme_is_refused(web: WebServer) -> None:
    url = web.redirect("/file", "file:///etc/passwd")

    result = fetch(url)

    assert result.reason == "redirect to an address that is not http or https: file:///etc/passwd"


def test_loopback_is_refused_unless_allowed(web: WebServer) -> None:
    url = web.page("/story", PAGE)

    refused = fetch(url, addresses=AddressPolicy())
    by_name = fetch(url.replace("127.0.0.1", "localhost"), addresses=AddressPolicy())

    assert refused.reason == (
        "127.0.0.1 is a loopback address: not fetched (NEWSBOT_FETCH_ALLOW_PRIVATE can allow it)"
    )
    assert by_name.reason is not None
    assert by_name.reason.startswith("localhost (") and "is a loopback address" in by_name.reason
    assert web.hits("/story") == 0  # nothing reached the server


def test_a_redirect_to_a_private_address_is_refused(web: WebServer) -> None:
    # Only 127.0.0.1 is allowed; 127.0.0.2 is loopback too, but not allowed.
    url = web.redirect("/go", f"http://127.0.0.2:{web.port}/story")
    web.page("/story", PAGE)

    result = fetch(url)

    assert result.reason == (
        "127.0.0.2 is a loopback address: not fetched (NEWSBOT_FETCH_ALLOW_PRIVATE can allow it)"
    )
    assert web.hits("/story") == 0


def test_the_allow_private_setting_allows_a_network(
    web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = web.page("/story", PAGE)
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_PRIVATE", "10.0.0.0/8, 127.0.0.0/8")
    settings = Settings()

    assert fetch(url, addresses=FetchPolicy.from_settings(settings).addresses).ok


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.10", "a private address"),
        ("172.16.5.4", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # a cloud's metadata service
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("100.64.0.1", "not a public address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4 inside IPv6
        ("64:ff9b::a00:1", "a private address"),  # 10.0.0.1 through NAT64
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("::ffff:93.184.215.14", None),
    ],
)
def test_only_public_addresses_are_allowed_by_default(address: str, kind: str | None) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) == kind


def test_an_allowed_network_lets_its_addresses_through() -> None:
    allowing = AddressPolicy.allowing(["10.0.0.0/8", "fd00::1"])

    assert allowing.refusal(ipaddress.ip_address("10.9.8.7")) is None
    assert allowing.refusal(ipaddress.ip_address("fd00::1")) is None
    assert allowing.refusal(ipaddress.ip_address("::ffff:10.0.0.1")) is None
    assert allowing.refusal(ipaddress.ip_address("192.168.1.1")) == "a private address"


def test_a_bad_allow_private_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_PRIVATE", "10.0.0.0/8, intranet")

    with pytest.raises(ValueError, match="'intranet' is not an IP address or network"):
        Settings()


# --- politeness: a few at once per host ---------------------------------------------------


def test_a_host_gets_at_most_per_host_requests_at_once(web: WebServer) -> None:
    urls = [web.page(f"/{n}", PAGE, delay=0.3) for n in range(6)]

    results = fetch_all(urls, policy(per_host=2))

    assert all(r.ok for r in results)
    assert web.peak == 2


def test_other_hosts_are_fetched_meanwhile(web: WebServer) -> None:
    # One server, two host names: each name is a host of its own.
    urls = [web.page(f"/{n}", PAGE, delay=0.3) for n in range(4)]
    by_name = [url.replace("127.0.0.1", "localhost") for url in urls]
    both = AddressPolicy.allowing(["127.0.0.1", "::1"])

    results = fetch_all(urls + by_name, policy(per_host=1, addresses=both))

    assert all(r.ok for r in results), [r.reason for r in results]
    assert web.peak == 2


def test_the_fetcher_is_usable_from_async_code(web: WebServer) -> None:
    url = web.page("/story", PAGE)

    async def run() -> list[FetchResult]:
        async with Fetcher(policy()) as fetcher:
            return [await fetcher.fetch(url), *await fetcher.fetch_many([url])]

    assert all(r.ok for r in asyncio.run(run()))
