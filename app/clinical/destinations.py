"""Where an alert webhook may go: its host resolved, every address vetted, and the call pinned to a vetted address.

``check`` runs when the clinic admin sets the URL and again before every delivery attempt (a name may resolve
elsewhere by then). A destination is refused unless every address its host resolves to is public (Python's
``ipaddress``: ``is_global``, and never multicast, link-local, unspecified, reserved, site-local, IPv4-mapped or
IPv4-compatible, nor a 6to4 or NAT64 address embedding a non-public IPv4 address, nor Teredo).
``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` lets loopback and private addresses through, nothing else. A host written as a
number (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``) is read as ``inet_aton`` (and so a resolver)
reads it. ``post`` then connects to the addresses it vetted, never to a fresh lookup of the name, while the request
still names the host (``Host`` header; for https, SNI and certificate verification against the host name). It
follows no redirect: http.client never does.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from app.core.config import Settings

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], list[Address]]

_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)
_NAT64 = IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): its addresses stand for the IPv4 address in their last 32 bits."""
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
""""This network" (RFC 1122): connecting there reaches this host; ``ipaddress`` calls it merely private."""
_TLS = ssl.create_default_context()


class RefusedDestination(Exception):
    """A webhook URL that may not be called; ``reason`` says why (no secret, no patient data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    allow_private_networks: bool = False
    require_https: bool = False


def policy_for(settings: Settings) -> Policy:
    """``WEBHOOK_ALLOW_PRIVATE_NETWORKS``, and https in production."""
    return Policy(
        allow_private_networks=settings.webhook_allow_private_networks,
        require_https=settings.environment == "production",
    )


@dataclass(frozen=True)
class Destination:
    """A vetted webhook URL: the host as written (for ``Host`` and TLS) and the addresses to connect to."""

    scheme: str
    host: str
    port: int
    target: str
    addresses: tuple[Address, ...]


def system_resolve(host: str, port: int) -> list[Address]:
    """Every address the system resolver gives ``host`` (A and AAAA), in its order, without duplicates."""
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP):
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


resolve: Resolver = system_resolve
"""The resolver ``check`` uses (tests replace it to change what a name resolves to)."""


def check(url: str, policy: Policy) -> Destination:
    """The destination ``url`` names, with every address it resolves to vetted; ``RefusedDestination`` if any is
    not allowed, or the URL is not an http(s) URL this service may call."""
    try:
        parsed = _URL.validate_python(url)
    except ValidationError:
        raise RefusedDestination("not a valid http or https URL") from None
    if parsed.scheme not in {"http", "https"}:
        raise RefusedDestination("not an http or https URL")
    if policy.require_https and parsed.scheme != "https":
        raise RefusedDestination("must be an https URL in production")
    if parsed.username or parsed.password:
        raise RefusedDestination("must not carry credentials (deliveries are signed instead)")
    host = (parsed.host or "").removeprefix("[").removesuffix("]")
    if not host:
        raise RefusedDestination("has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise RefusedDestination(f"its host {host} could not be resolved") from None
        if not addresses:
            raise RefusedDestination(f"its host {host} could not be resolved")
    for address in addresses:
        reason = refusal(address, allow_private_networks=policy.allow_private_networks)
        if reason is not None:
            where = f"{host} is" if literal is not None else f"{host} resolves to {address},"
            raise RefusedDestination(f"{where} {reason}: webhooks go only to public addresses")
    target = parsed.path or "/"
    if parsed.query is not None:
        target += f"?{parsed.query}"
    return Destination(parsed.scheme, host, port, target, tuple(addresses))


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells, as a resolver reads it (IPv6, dotted IPv4, and the decimal, hex, octal and
    shortened IPv4 forms ``inet_aton`` accepts), or None for a name."""
    try:
        return ip_address(host)
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefxABCDEFX." for char in host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refusal(address: Address, *, allow_private_networks: bool = False) -> str | None:
    """Why a webhook may not go to ``address``, or None if it may."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if int(address) >> 32 == 0 and int(address) > 1:
            return "an IPv4-compatible IPv6 address"
        if address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
            reason = refusal(embedded)
            return None if reason is None else f"a NAT64 address of {embedded}, {reason}"
        if address.sixtofour is not None and refusal(address.sixtofour) is not None:
            return f"a 6to4 address of {address.sixtofour}, not a public address"
        if address.teredo is not None:
            return "a Teredo tunnel address"
        if address.is_site_local:
            return "a site-local address"
    elif address in _THIS_NETWORK:
        return "an address of this host's own network (0.0.0.0/8)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_loopback:
        return None if allow_private_networks else "a loopback address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_global:
        return None
    if address.is_private:
        return None if allow_private_networks else "a private address"
    return "not a public address (such as carrier-grade NAT)"


def post(destination: Destination, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
    """POST ``body`` to the vetted destination and return the response's status (no redirect is followed)."""
    connection = _PinnedConnection(destination, timeout=timeout)
    try:
        connection.request("POST", destination.target, body=body, headers=dict(headers))
        return connection.getresponse().status
    finally:
        connection.close()


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to the host's vetted addresses: the request names the host, the socket goes to the
    address (tried in order, as ``socket.create_connection`` tries a name's addresses)."""

    def __init__(self, destination: Destination, *, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.default_port = 443 if destination.scheme == "https" else 80  # Host names the port only if another
        self._addresses = destination.addresses
        self._tls = destination.scheme == "https"

    def connect(self) -> None:
        error: OSError | None = None
        for address in self._addresses:
            try:
                sock = socket.create_connection((str(address), self.port), self.timeout)
            except OSError as exc:
                error = exc
                continue
            if self._tls:
                try:
                    sock = _TLS.wrap_socket(sock, server_hostname=self.host)
                except BaseException:
                    sock.close()
                    raise
            self.sock = sock
            return
        raise error or OSError("no address to connect to")
