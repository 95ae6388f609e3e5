"""Fetching web pages politely and safely: `FetchRequest`s in, a `FetchResult` for each out.

Politely: a User-Agent that names newsbot, a few pages at once per host, retries spaced out
(and as long as a site's Retry-After asks), conditional requests (ETag, Last-Modified) so an
unchanged page is not sent again. Safely: http and https only, public addresses only (see
`index.ingest.web.addresses`), a time limit on every attempt, a size limit past which reading
stops (on the body as sent and as decoded: `index.ingest.web.codings`), a limit on redirects
and no loops. A failure is a result with a one-line reason, never
an exception: one bad page does not stop the others.

From synchronous code: `fetch_all(requests, policy)`. From async code (a feed sync, say):

    async with Fetcher(policy) as fetcher:
        results = await fetcher.fetch_many(requests)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version

import httpx

from index.errors import HostRefusedError, PageError
from index.ingest.corpus.decoding import decode_text
from index.ingest.web.addresses import (
    AddressPolicy,
    guarded_transport,
    shown_address,
)
from index.ingest.web.codings import (
    ACCEPT_ENCODING,
    BodyDecoder,
    UndecodableBody,
    UnsupportedCoding,
    codings_of,
)
from index.ingest.web.headers import (
    content_type,
    retry_after,
    status_text,
    validator,
    wait_text,
)
from index.settings import Settings

MB = 1_000_000
HTML_TYPES = ("text/html", "application/xhtml+xml")
SCHEMES = ("http", "https")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers that say "try again later": too many requests, and the server's own troubles.
RETRIED = frozenset({429, 500, 502, 503, 504})
NOT_MODIFIED = 304
# The first retry waits this long, each next one twice as long (unless Retry-After says).
BACKOFF_SECONDS = 1.0
# The longest wait between tries; a site that asks for longer fails the page instead.
MAX_RETRY_WAIT = 60.0
# Why an address with a user name or password in it is refused, for the address given and
# every redirect: newsbot would send them to the site (and to every site it redirects to) and
# write them into the article's `url`, which every citation shows.
CREDENTIALS = "the address carries a user name or password: not fetched (newsbot sends none)"
# Pages fetched at once in all, whatever their hosts (NEWSBOT_FETCH_PER_HOST bounds each).
MAX_CONNECTIONS = 16

FetchCallback = Callable[["FetchResult"], None]


def default_user_agent() -> str:
    """`newsbot/VERSION`, how newsbot names itself unless NEWSBOT_FETCH_USER_AGENT says."""
    try:
        return f"newsbot/{version('newsbot')}"
    except PackageNotFoundError:
        return "newsbot"


class FetchOutcome(StrEnum):
    """What became of a request."""

    FETCHED = "fetched"
    NOT_MODIFIED = "not modified"  # a conditional request, answered 304: nothing new
    FAILED = "failed"
    # The caller's time ran out first (`fetch_many(seconds=...)`): not fetched, or stopped.
    OUT_OF_TIME = "out of time"


@dataclass(frozen=True)
class FetchRequest:
    """One address to fetch, with what the last fetch of it said (for a conditional request).

    `accept` lists the media types wanted; another fails the request (a PDF where a page was
    expected), without reading its body. `kind` names them in that failure: "not a web
    page (application/pdf)". A response with no Content-Type is accepted.
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    accept: tuple[str, ...] = HTML_TYPES
    kind: str = "a web page"


@dataclass(frozen=True)
class FetchResult:
    """What fetching one `FetchRequest` gave: the page, "not modified", or why it failed."""

    url: str  # as requested
    outcome: FetchOutcome
    final_url: str | None = None  # after redirects; None if never reached
    status: int | None = None  # the last HTTP status received
    content_type: str | None = None  # media type, lower case, without parameters
    charset: str | None = None  # as the Content-Type header names it
    body: bytes = b""
    etag: str | None = None  # to send with the next request (the request's own if not sent)
    last_modified: str | None = None
    reason: str | None = None  # why it failed, on one line
    attempts: int = 0  # HTTP requests made: redirects and retries included

    @property
    def ok(self) -> bool:
        """Whether the page was fetched."""
        return self.outcome is FetchOutcome.FETCHED

    def error(self) -> PageError:
        """The failure as a domain error: `URL: reason`."""
        return PageError(self.url, self.reason or self.outcome.value)

    def text(self) -> str:
        """The body as text: in the charset the server names, else as UTF-8, else in the
        encoding detected (charset-normalizer heeds a page's `<meta charset>`).

        Raises:
            ArticleError: the body is binary, or no encoding fits it.
        """
        if self.charset:
            try:
                return self.body.decode(self.charset)
            except (LookupError, UnicodeDecodeError):
                pass  # a wrong or unknown charset: the body decides
        return decode_text(self.body, self.final_url or self.url)


@dataclass(frozen=True)
class FetchPolicy:
    """How newsbot fetches: its name, its limits and its patience. Defaults: `Settings`'."""

    user_agent: str = field(default_factory=default_user_agent)
    timeout: float = 20.0  # seconds for one attempt, all in: resolving, connecting, reading
    max_bytes: int = 5 * MB
    max_redirects: int = 5
    retries: int = 2
    per_host: int = 2
    connections: int = MAX_CONNECTIONS
    backoff: float = BACKOFF_SECONDS
    max_retry_wait: float = MAX_RETRY_WAIT
    addresses: AddressPolicy = field(default_factory=AddressPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The policy the NEWSBOT_FETCH_* settings describe."""
        return cls(
            user_agent=settings.fetch_user_agent.strip() or default_user_agent(),
            timeout=settings.fetch_timeout,
            max_bytes=int(settings.fetch_max_mb * MB),
            max_redirects=settings.fetch_max_redirects,
            retries=settings.fetch_retries,
            per_host=settings.fetch_per_host,
            addresses=AddressPolicy.allowing(settings.fetch_allow_private),
        )


class _Failed(Exception):
    """A request that cannot succeed; the message is the reason, `status` the HTTP status
    that said so, if one did."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class _Dropped(_Failed):
    """A connection that failed or broke off: worth another try."""


@dataclass
class _Answer:
    """One HTTP response: its status, headers and (for a page) its body."""

    url: httpx.URL
    status: int
    headers: httpx.Headers
    body: bytes = b""
    tries: int = 1  # requests made to this address (retries included)


@dataclass
class _Trail:
    """One request's way: the addresses visited and the HTTP requests made."""

    visited: list[httpx.URL]
    attempts: int = 0


class Fetcher:
    """Fetches pages under a `FetchPolicy`; open it with `async with` before fetching."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        policy = self.policy
        self._client = httpx.AsyncClient(
            transport=guarded_transport(policy.addresses, connections=policy.connections),
            headers={"User-Agent": policy.user_agent},
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,  # followed here, each hop checked
            trust_env=False,
        )
        self._slots = asyncio.Semaphore(policy.connections)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch_many(
        self,
        requests: Sequence[FetchRequest | str],
        on_result: FetchCallback | None = None,
        *,
        seconds: float | None = None,
    ) -> list[FetchResult]:
        """Fetch every request, many at once (at most `per_host` per host).

        Args:
            requests: the requests, or plain URLs.
            on_result: called with each result as it comes, in the order they finish.
            seconds: the time all of them may take (None: no limit beyond each attempt's):
                those not done by then are stopped, `OUT_OF_TIME` (`on_result` is not told).

        Returns:
            One result per request, in the requests' order.
        """
        asked = [FetchRequest(r) if isinstance(r, str) else r for r in requests]

        async def one(request: FetchRequest) -> FetchResult:
            result = await self.fetch(request)
            if on_result is not None:
                on_result(result)
            return result

        tasks = [asyncio.ensure_future(one(request)) for request in asked]
        _, pending = await asyncio.wait(tasks, timeout=seconds) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return [
            _out_of_time(request, seconds) if task in pending else task.result()
            for request, task in zip(asked, tasks, strict=True)
        ]

    async def fetch(self, request: FetchRequest | str) -> FetchResult:
        """Fetch one page, following redirects; a failure is a result, never an exception."""
        if isinstance(request, str):
            request = FetchRequest(request)
        trail = _Trail(visited=[])
        try:
            return await self._follow(request, trail)
        except _Failed as failure:
            final = str(trail.visited[-1]) if trail.visited else None
            return FetchResult(
                request.url,
                FetchOutcome.FAILED,
                final_url=final,
                status=failure.status,
                reason=str(failure),
                attempts=trail.attempts,
                etag=request.etag,
                last_modified=request.last_modified,
            )

    async def _follow(self, request: FetchRequest, trail: _Trail) -> FetchResult:
        url = _web_address(request.url, "not an http or https address")
        while True:
            trail.visited.append(url)
            answer = await self._hop(url, request, trail)
            if answer.status not in REDIRECTS:
                return self._result(request, answer, trail)
            url = self._next_hop(answer, trail)

    def _next_hop(self, answer: _Answer, trail: _Trail) -> httpx.URL:
        location = answer.headers.get("location")
        if not location:
            raise _Failed(f"{status_text(answer.status)} without a Location to go to")
        try:
            target = answer.url.join(location)
        except httpx.InvalidURL as exc:
            raise _Failed(f"redirect to an invalid address ({exc})") from exc
        refusal = "redirect to an address that is not http or https"
        target = _web_address(str(target), refusal, shown=location)
        if target in trail.visited:
            loop = " → ".join(str(url) for url in [*trail.visited, target])
            raise _Failed(f"redirect loop: {loop}")
        if len(trail.visited) > self.policy.max_redirects:
            raise _Failed(f"too many redirects (more than {self.policy.max_redirects})")
        return target

    def _result(self, request: FetchRequest, answer: _Answer, trail: _Trail) -> FetchResult:
        result = FetchResult(
            request.url,
            FetchOutcome.NOT_MODIFIED,
            final_url=str(answer.url),
            status=answer.status,
            etag=validator(answer.headers.get("etag")) or request.etag,
            last_modified=validator(answer.headers.get("last-modified")) or request.last_modified,
            attempts=trail.attempts,
        )
        if answer.status == NOT_MODIFIED:
            return result
        if not 200 <= answer.status < 300:
            tried = f" ({answer.tries} attempts)" if answer.tries > 1 else ""
            raise _Failed(status_text(answer.status) + tried, answer.status)
        media_type, charset = content_type(answer.headers)
        return replace(
            result,
            outcome=FetchOutcome.FETCHED,
            content_type=media_type,
            charset=charset,
            body=answer.body,
        )

    async def _hop(self, url: httpx.URL, request: FetchRequest, trail: _Trail) -> _Answer:
        """One address, tried again after a 429, a 5xx or a dropped connection."""
        async with self._host_slot(url.host):
            for attempt in range(self.policy.retries):
                trail.attempts += 1
                try:
                    answer = await self._attempt(url, request)
                except _Dropped:
                    wait = self._backoff(attempt)
                else:
                    if answer.status not in RETRIED:
                        answer.tries = attempt + 1
                        return answer
                    wait = self._retry_wait(answer, attempt)
                await asyncio.sleep(wait)
            trail.attempts += 1
            answer = await self._attempt(url, request)
            answer.tries = self.policy.retries + 1
            return answer

    def _backoff(self, attempt: int) -> float:
        return min(self.policy.backoff * 2**attempt, self.policy.max_retry_wait)

    def _retry_wait(self, answer: _Answer, attempt: int) -> float:
        """How long to wait before trying again: what Retry-After asks, else the backoff."""
        asked = retry_after(answer.headers.get("retry-after"))
        if asked is None:
            return self._backoff(attempt)
        if asked > self.policy.max_retry_wait:
            raise _Failed(
                f"{status_text(answer.status)}: the site asks to wait {wait_text(asked)} before "
                f"trying again, longer than newsbot waits ({self.policy.max_retry_wait:g} s)"
            )
        return asked

    async def _attempt(self, url: httpx.URL, request: FetchRequest) -> _Answer:
        """One HTTP request, all of it (connecting, waiting, reading) within the timeout."""
        assert self._slots is not None, "use `async with Fetcher(...)`"
        try:
            async with self._slots, asyncio.timeout(self.policy.timeout):
                return await self._get(url, request)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _Failed(f"timed out after {self.policy.timeout:g} s") from exc
        except HostRefusedError as exc:
            raise _Failed(str(exc)) from exc
        except (httpx.ConnectError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Dropped(f"connection failed ({_why(exc)})") from exc
        except httpx.RemoteProtocolError as exc:
            raise _Dropped(f"the server broke off the answer ({_why(exc)})") from exc
        except httpx.HTTPError as exc:  # an invalid URL, undecodable content...
            raise _Failed(f"{type(exc).__name__}: {_why(exc)}") from exc

    async def _get(self, url: httpx.URL, request: FetchRequest) -> _Answer:
        assert self._client is not None, "use `async with Fetcher(...)`"
        headers = {
            "Accept": ", ".join([*request.accept, "*/*;q=0.1"]),
            "Accept-Encoding": ACCEPT_ENCODING,  # only what `_read` decodes within the limit
        }
        # What an earlier answer said (kept in feeds.json, which may be edited): sent back
        # only if it can be a header.
        if etag := validator(request.etag):
            headers["If-None-Match"] = etag
        if last_modified := validator(request.last_modified):
            headers["If-Modified-Since"] = last_modified
        async with self._client.stream("GET", url, headers=headers) as response:
            answer = _Answer(url, response.status_code, response.headers)
            if response.status_code in REDIRECTS or not 200 <= response.status_code < 300:
                return answer  # its body is not needed
            media_type, _ = content_type(response.headers)
            if media_type is not None and media_type not in request.accept:
                raise _Failed(f"not {request.kind} ({media_type})")
            answer.body = await self._read(response)
            return answer

    async def _read(self, response: httpx.Response) -> bytes:
        """The body, decoded, read no further than the size limit: neither its bytes as sent
        nor as decoded may pass it (a few KB of zstd can expand to gigabytes)."""
        limit = self.policy.max_bytes
        too_large = f"too large (over the {limit / MB:g} MB limit)"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Failed(f"{too_large}: {int(declared) / MB:.1f} MB")
        try:
            codings = codings_of(response.headers.get("content-encoding"))
        except UnsupportedCoding as exc:
            raise _Failed(str(exc)) from exc
        body = bytearray()

        def keep(piece: bytes) -> None:
            body.extend(piece)
            if len(body) > limit:
                raise _Failed(f"{too_large}: stopped reading")

        decoder = BodyDecoder(codings, keep)
        sent = 0
        async for chunk in response.aiter_raw():
            sent += len(chunk)
            if sent > limit:
                raise _Failed(f"{too_large}: stopped reading")
            try:
                decoder.write(chunk)
            except UndecodableBody as exc:
                raise _Failed(str(exc)) from exc
        return bytes(body)

    @asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        slot = self._hosts.setdefault(host.lower(), asyncio.Semaphore(self.policy.per_host))
        async with slot:
            yield


def fetch_all(
    requests: Sequence[FetchRequest | str],
    policy: FetchPolicy | None = None,
    on_result: FetchCallback | None = None,
    *,
    seconds: float | None = None,
) -> list[FetchResult]:
    """Fetch every request (see `Fetcher.fetch_many`), from synchronous code."""

    async def run() -> list[FetchResult]:
        async with Fetcher(policy) as fetcher:
            return await fetcher.fetch_many(requests, on_result, seconds=seconds)

    return asyncio.run(run())


def _out_of_time(asked: FetchRequest, seconds: float | None) -> FetchResult:
    reason = f"not fetched: out of time ({seconds or 0:g} s)"
    outcome = FetchOutcome.OUT_OF_TIME
    return FetchResult(
        asked.url, outcome, reason=reason, etag=asked.etag, last_modified=asked.last_modified
    )


def _web_address(url: str, refusal: str, *, shown: str | None = None) -> httpx.URL:
    """`url` parsed, if it is an http or https address with a host and no credentials; else
    `_Failed` with `refusal` (and `shown`, if given: the address as the page named it)."""
    named = f": {shown_address(shown)}" if shown else ""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _Failed(f"invalid address{named} ({exc})") from exc
    if parsed.scheme not in SCHEMES:
        raise _Failed(f"{refusal}{named}")
    if not parsed.host:
        raise _Failed(f"no host in the address{named}")
    if parsed.userinfo:
        raise _Failed(f"{CREDENTIALS}{named}" if shown else CREDENTIALS)
    return parsed.copy_with(fragment=None)


def _why(exc: BaseException) -> str:
    """What went wrong, in the system's words where it has some ("Connection refused")."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return str(exc).strip() or type(exc).__name__
