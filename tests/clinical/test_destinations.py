"""Where a webhook may go: which addresses, how a host written as a number is read, every resolved address."""

from __future__ import annotations

import socket
from ipaddress import ip_address

import pytest

from app.clinical import destinations
from app.clinical.destinations import Policy, RefusedDestination, check, literal_address, refusal
from tests.clinical.conftest import PUBLIC_ADDRESS, FakeResolver

PUBLIC = [
    "8.8.8.8",
    "93.184.215.14",
    "2606:4700::1111",
    "2a00:1450:4001:80b::200e",
    "64:ff9b::808:808",
    "2002:808:808::1",
]
LOOPBACK_OR_PRIVATE = ["127.0.0.1", "127.255.255.254", "::1", "10.1.2.3", "172.31.0.1", "192.168.0.1", "fd12:3456::1"]
NEVER = [
    "0.0.0.0",  # noqa: S104 - an address refused, not bound
    "0.1.2.3",
    "::",
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "100.64.0.1",
    "100.127.255.254",
    "224.0.0.251",
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "240.0.0.1",
    "255.255.255.255",
    "::ffff:127.0.0.1",
    "::ffff:8.8.8.8",
    "::7f00:1",
    "64:ff9b::a00:1",
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fec0::1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_webhook_destinations(address: str) -> None:
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize("address", LOOPBACK_OR_PRIVATE)
def test_loopback_and_private_addresses_are_destinations_only_when_allowed(address: str) -> None:
    assert refusal(ip_address(address)) is not None
    assert refusal(ip_address(address), allow_private_networks=True) is None


@pytest.mark.parametrize("address", NEVER)
def test_link_local_multicast_reserved_mapped_and_shared_addresses_are_never_destinations(address: str) -> None:
    assert refusal(ip_address(address)) is not None
    assert refusal(ip_address(address), allow_private_networks=True) is not None


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.1", "0x7f.1", "017700000001", "10.1", "0"]
)
def test_a_host_written_as_a_number_is_read_as_a_resolver_reads_it(host: str) -> None:
    """The same address the system resolver gives for the same text (numeric, so no DNS is asked)."""
    [(*_, sockaddr)] = socket.getaddrinfo(host, 80, socket.AF_INET, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)

    assert literal_address(host) == ip_address(sockaddr[0])


def test_a_name_is_not_read_as_an_address() -> None:
    assert [literal_address(host) for host in ("cafe", "hooks.clinic.example", "1.2.3.4.5")] == [None, None, None]


def test_every_resolved_address_is_vetted(resolver: FakeResolver) -> None:
    resolver.answers["mixed.clinic.example"] = [PUBLIC_ADDRESS, "2606:4700::1111", "10.0.0.7"]
    resolver.answers["public.clinic.example"] = [PUBLIC_ADDRESS, "2606:4700::1111"]

    with pytest.raises(RefusedDestination, match=r"resolves to 10\.0\.0\.7, a private address"):
        check("https://mixed.clinic.example/hooks", Policy())
    destination = check("https://public.clinic.example:8443/hooks?clinic=1", Policy())

    assert destination.addresses == (ip_address(PUBLIC_ADDRESS), ip_address("2606:4700::1111"))
    assert (destination.scheme, destination.host, destination.port) == ("https", "public.clinic.example", 8443)
    assert destination.target == "/hooks?clinic=1"


def test_an_unresolvable_host_is_refused(resolver: FakeResolver) -> None:
    with pytest.raises(RefusedDestination, match="could not be resolved"):
        check("https://nowhere.clinic.example/hooks", Policy())


def test_a_literal_address_is_not_looked_up(resolver: FakeResolver) -> None:
    destination = check("http://[2606:4700::1111]:8080/hooks", Policy())

    assert destination.addresses == (ip_address("2606:4700::1111"),)
    assert destination.host == "2606:4700::1111"
    assert resolver.lookups == []


def test_urls_with_credentials_or_other_schemes_are_refused(resolver: FakeResolver) -> None:
    resolver.answers["hooks.clinic.example"] = [PUBLIC_ADDRESS]

    for url in ("https://user:pw@hooks.clinic.example/", "ftp://hooks.clinic.example/", "hooks.clinic.example"):
        with pytest.raises(RefusedDestination):
            check(url, Policy())
    with pytest.raises(RefusedDestination, match="https"):
        check("http://hooks.clinic.example/", Policy(require_https=True))


def test_the_system_resolver_is_the_default() -> None:
    assert destinations.resolve is destinations.system_resolve
    assert ip_address("127.0.0.1") in destinations.system_resolve("127.0.0.1", 80)
