"""Which network addresses newsbot may fetch from, checked where it connects.

A page, or a redirect, could point newsbot at the machine it runs on or at the network
behind it (a cloud's metadata service at 169.254.169.254, an admin page on 10.0.0.1). So only
public addresses are fetched from, unless NEWSBOT_FETCH_ALLOW_PRIVATE allows others. The check
runs on the addresses the host name resolves to, each time a connection is opened, and the
connection goes to the address that was checked: a redirect to another host is checked
again, and a name that resolves to a public address when asked and a private one a moment
later (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from index.errors import HostRefusedError
from index.redaction import without_passwords

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# IPv6 addresses that carry an IPv4 one a gateway reaches for them (NAT64).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
ALLOW_SETTING = "NEWSBOT_FETCH_ALLOW_PRIVATE"


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses may be fetched from; others only when in `allowed`."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, items: Iterable[str]) -> AddressPolicy:
        """A policy that also allows these addresses or networks ("127.0.0.1", "10.0.0.0/8").

        Raises:
            ValueError: an item is not an IP address or network.
        """
        return cls(tuple(ipaddress.ip_network(item, strict=False) for item in items))

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be fetched from ("a loopback address"); None if it may."""
        # An IPv6 address that stands for an IPv4 one is judged as that one.
        judged = _embedded_ipv4(address) or address
        kind = _non_public_kind(judged)
        if kind is None or any(judged in network for network in self.allowed):
            return None
        return kind


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to the allowed addresses a host resolves to.

    Every connection httpx opens (the first request, each redirect, each retry) comes here:
    the host is resolved once, every address it resolves to is checked, and the connection
    goes to a checked address (TLS still verifies the certificate against the host name).
    """

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.resolve(host, port):
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the host's next address
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise HostRefusedError("a local socket is never fetched from")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses `host` resolves to, all of them allowed.

        Raises:
            HostRefusedError: the host is not found, or any address it resolves to is not
                allowed (one bad address is enough: a name that mixes public and private
                addresses is not trusted).
        """
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise HostRefusedError(f"host {host} not found ({reason})") from exc
        addresses: list[IPAddress] = []
        for info in infos:
            # A link-local IPv6 address comes with its interface: fe80::1%eth0.
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise HostRefusedError(f"host {host} not found (no address)")
        for address in addresses:
            kind = self._policy.refusal(address)
            if kind is not None:
                named = str(address) if host == str(address) else f"{host} ({address})"
                raise HostRefusedError(
                    f"{named} is {kind}: not fetched ({ALLOW_SETTING} can allow it)"
                )
        return addresses


def guarded_transport(policy: AddressPolicy, *, connections: int) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through `GuardedBackend`.

    Proxy variables (HTTPS_PROXY...) are not used: through a proxy, newsbot would no longer
    see the addresses it connects to.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx takes no network backend, so its connection pool is replaced by httpcore's own
    # with the guard; tests/test_fetcher.py fails if a connection ever bypasses it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=connections,
        max_keepalive_connections=connections,
        network_backend=GuardedBackend(policy),
    )
    return transport


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (::ffff:127.0.0.1, 64:ff9b::7f00:1), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _non_public_kind(address: IPAddress) -> str | None:
    """What kind of address that is not public `address` is; None for a public one."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:  # shared (100.64.0.0/10), documentation ranges...
        return "not a public address"
    return None


def has_credentials(url: str) -> bool:
    """Whether `url` carries a user name or password (`https://user:password@host/`)."""
    try:
        return bool(httpx.URL(url).userinfo)
    except (httpx.InvalidURL, TypeError):  # unparsable: anything before its host counts
        authority = url.partition("://")[2]
        return "@" in re.split(r"[/?#\\]", authority, maxsplit=1)[0]


def shown_address(url: str, limit: int = 100) -> str:
    """An address as a failure shows it: its password masked, cut short if long."""
    url = without_passwords(url)
    return url if len(url) <= limit else url[: limit - 1] + "…"
