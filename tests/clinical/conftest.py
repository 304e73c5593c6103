"""Fixtures of the clinical tests: answers that give a chosen score, a seeding helper, and webhook receivers.

``seed`` records a measurement as every path in does (``app.clinical.recording``): stored, with its alerts, in one
committed transaction.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.permissions import Role
from app.clinical import destinations, recording
from app.clinical.models import WebhookDelivery
from app.core.db import transaction
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.measurements import service as measurements
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from app.scoring.engine import Answer
from tests.conftest import ClinicKeys

DAY_ONE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    """Measurement time n days after the first session (09:00 UTC)."""
    return DAY_ONE + timedelta(days=n)


def sum_items(total: int, numbers: list[str], maximum: int, fixed: dict[str, int] | None = None) -> dict[str, Answer]:
    """Answers to a sum-scored instrument adding up to ``total``: fixed items first, the rest filled in order."""
    items: dict[str, Answer] = dict(fixed or {})
    remaining = total - sum(fixed.values() if fixed else [])
    for number in numbers:
        if number in items:
            continue
        answer = min(maximum, remaining)
        items[number] = answer
        remaining -= answer
    assert remaining == 0, "total out of range"
    return items


def phq9(total: int, item9: int = 0) -> dict[str, Answer]:
    return sum_items(total, [str(n) for n in range(1, 10)], 3, {"9": item9})


def gad7(total: int) -> dict[str, Answer]:
    return sum_items(total, [str(n) for n in range(1, 8)], 3)


def fcs_from_others(total: int) -> dict[str, Answer]:
    return sum_items(total, [str(n) for n in range(1, 14)], 4)


SCS_SF_NEGATIVE = ("1", "4", "8", "9", "11", "12")


def scs_sf(positive: int, negative: int) -> dict[str, Answer]:
    """Every positive item = ``positive``, every negative item = ``negative``: total = (positive + 6 − negative) / 2."""
    return {str(n): negative if str(n) in SCS_SF_NEGATIVE else positive for n in range(1, 13)}


def fscrs(item9: int = 0) -> dict[str, Answer]:
    items: dict[str, Answer] = {str(n): 1 for n in range(1, 23)}
    return items | {"9": item9}


def seed(
    app: FastAPI,
    clinic: ClinicKeys,
    patient_id: str | uuid.UUID,
    instrument: str,
    items: dict[str, Answer],
    measured_at: datetime,
    **extra: Any,
) -> Measurement:
    """Record a scored measurement (and raise its alerts) in one committed transaction."""
    for db in transaction(state_of(app).write_sessions):
        new = measurements.new_measurement(
            state_of(app).part(InstrumentRegistry),
            instrument,
            clinic_id=clinic.id,
            patient_id=uuid.UUID(str(patient_id)),
            items=items,
            measured_at=measured_at,
            source=Source.API,
            **extra,
        )
        row = recording.record_one(db, new)
    return Measurement(**row)


def new_patient(client: Any, clinic: ClinicKeys, **body: Any) -> str:
    response = client.post("/v1/patients", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


PUBLIC_ADDRESS = "93.184.215.14"
"""A public (global) IPv4 address that fake names resolve to; no test connects to it."""


@dataclass
class FakeResolver:
    """What each name resolves to, as the webhook's destination check sees it; every lookup is recorded.

    ``answers`` maps a name to its addresses; a name with a list of answers in ``then`` gets them one lookup at a
    time (the last one repeated), for a name that resolves differently from one lookup to the next.
    """

    answers: dict[str, list[str]] = field(default_factory=dict)
    then: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[destinations.Address]:
        self.lookups.append(host)
        if self.then.get(host):
            answer = self.then[host].pop(0) if len(self.then[host]) > 1 else self.then[host][0]
        elif host in self.answers:
            answer = self.answers[host]
        else:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(address) for address in answer]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    """Names resolve only as the test says (no DNS is asked)."""
    fake = FakeResolver()
    monkeypatch.setattr(destinations, "resolve", fake)
    return fake


@pytest.fixture
def allow_private_networks(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Set WEBHOOK_ALLOW_PRIVATE_NETWORKS on the app for this test (configuration and delivery both read it)."""

    def allow(allowed: bool) -> None:
        monkeypatch.setattr(state_of(app).settings, "webhook_allow_private_networks", allowed)

    return allow


AllowPrivate = Callable[[bool], None]
TLS = Path(__file__).parent / "tls"
"""A test CA (``ca.pem``) and a certificate for hooks.clinic.example signed by it, with its key (``hooks.pem``):
test-only, valid until 2126."""


@dataclass
class Receiver:
    """What a test server saw (headers with lower-case names, the body as sent and as JSON), and how it answers."""

    url: str
    port: int
    status: int = 204
    location: str | None = None
    calls: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    """The TLS server names (SNI) clients asked for, when it serves https."""


@contextmanager
def running_receiver(host: str = "127.0.0.1", port: int = 0, *, tls: bool = False) -> Iterator[Receiver]:
    state = Receiver(url="", port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.bodies.append(body)
            state.calls.append(({name.lower(): value for name, value in self.headers.items()}, json.loads(body)))
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``state.calls`` instead."""

    server = ThreadingHTTPServer((host, port), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS / "hooks.pem")
        context.sni_callback = lambda _socket, name, _context: state.server_names.append(name)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    state.url = f"http://{host}:{state.port}/hooks/alerts"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def receiver(allow_private_networks: AllowPrivate) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1, reachable because the test allows private networks (as development does)."""
    allow_private_networks(True)
    with running_receiver() as state:
        yield state


LIVE_FOR_THE_FIXTURES = 3650
"""``historical_alert_days`` for tests of paging: the fixtures' measurements (January 2026, ``day``) are older than
the default 14 days on a running clock, and would be historical (never paged)."""


def set_webhook(
    client: TestClient, clinic: ClinicKeys, url: str, *, historical_alert_days: int = LIVE_FOR_THE_FIXTURES
) -> dict[str, Any]:
    settings = {"webhook_url": url, "historical_alert_days": historical_alert_days}
    response = client.put("/v1/clinic/settings", json=settings, headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def deliveries(app: FastAPI, clinic: ClinicKeys) -> list[WebhookDelivery]:
    with state_of(app).read_sessions() as db:
        return list(
            db.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.clinic_id == clinic.id)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            )
        )
