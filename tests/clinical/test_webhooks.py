"""The alert webhook, against a real HTTP server on 127.0.0.1: ids and the flag only, sent after commit."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.clinical import webhooks
from app.clinical.alerts import raise_alerts_for
from app.clinical.models import RiskAlert, WebhookDelivery
from app.measurements import service as measurements
from app.measurements.schemas import Source
from tests.clinical.conftest import day, phq9, seed
from tests.conftest import ClinicKeys


@dataclass
class Receiver:
    """What the test server saw, and the status it answers with."""

    url: str
    status: int = 204
    calls: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.calls.append((dict(self.headers.items()), json.loads(body)))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``state.calls`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def set_webhook(client: TestClient, clinic: ClinicKeys, url: str) -> None:
    response = client.put("/v1/clinic/settings", json={"webhook_url": url}, headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text


def deliveries(app: FastAPI, clinic: ClinicKeys) -> list[WebhookDelivery]:
    with app.state.read_sessions() as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.clinic_id == clinic.id)))


def test_an_alert_calls_the_webhook_with_ids_and_the_flag_only(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)

    row = seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    webhooks.wait_for_deliveries()

    [(headers, payload)] = receiver.calls
    with app.state.read_sessions() as session:
        alert = session.scalars(select(RiskAlert).where(RiskAlert.measurement_id == row.measurement_id)).one()
    assert payload == {
        "event": "risk_alert.raised",
        "alert_id": str(alert.id),
        "clinic_id": str(clinic.id),
        "patient_id": patient_id,
        "measurement_id": str(row.measurement_id),
        "flag": "item9_positive",
    }
    assert headers["Content-Type"] == "application/json"
    [delivery] = deliveries(app, clinic)
    assert headers["Webhook-Id"] == str(delivery.id)
    assert delivery.delivered_at is not None
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 204, None)


def test_an_alert_raised_by_a_posted_measurement_is_delivered_after_its_commit(
    client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    """Through the API the ingest's transaction may be on the event loop (PostgreSQL): the delivery after the commit
    still runs in its own thread, on a connection of its own."""
    set_webhook(client, clinic, receiver.url)
    body = {"instrument": "phq9", "items": phq9(14, item9=3), "measured_at": "2026-11-20T09:30:00+01:00"}

    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    webhooks.wait_for_deliveries()

    [(_headers, payload)] = receiver.calls
    assert payload["measurement_id"] == response.json()["id"]
    assert payload["flag"] == "item9_positive"


def test_alerts_raised_together_by_a_bulk_import_are_each_delivered(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    """Many alerts in one statement find their clinic's webhook by a lookup, not by the INSERT (as one alert does)."""
    set_webhook(client, clinic, receiver.url)
    header = "external_id,instrument,measured_at," + ",".join(f"item_{n}" for n in range(1, 10))
    rows = [f"MRN-{n},phq9,2026-11-0{n}T09:00:00Z,2,2,2,2,1,1,1,1,{item9}" for n, item9 in ((1, 3), (2, 0), (3, 1))]
    headers = {**clinic.headers(Role.INTEGRATION), "Content-Type": "text/csv"}

    response = client.post(
        "/v1/research/imports?create_patients=true", content="\n".join([header, *rows]) + "\n", headers=headers
    )
    assert response.status_code == 201, response.text
    webhooks.wait_for_deliveries()

    with app.state.read_sessions() as session:
        alerts = {str(alert.id) for alert in session.scalars(select(RiskAlert).where(RiskAlert.clinic_id == clinic.id))}
    assert len(alerts) == 2
    assert {payload["alert_id"] for _headers, payload in receiver.calls} == alerts
    assert {payload["flag"] for _headers, payload in receiver.calls} == {"item9_positive"}
    assert all(delivery.delivered_at is not None for delivery in deliveries(app, clinic))


def test_a_failed_delivery_stays_pending_and_is_retried(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)
    receiver.status = 503

    seed(app, clinic, patient_id, "phq9", phq9(14, item9=1), day(0))
    webhooks.wait_for_deliveries()
    [failed] = deliveries(app, clinic)
    receiver.status = 200
    webhooks.deliver_pending(app.state.engine)
    [delivered] = deliveries(app, clinic)

    assert (failed.attempts, failed.last_status, failed.last_error, failed.delivered_at) == (1, 503, "HTTP 503", None)
    assert (delivered.attempts, delivered.last_status) == (2, 200)
    assert delivered.delivered_at is not None
    assert len(receiver.calls) == 2
    assert receiver.calls[0][1] == receiver.calls[1][1]


def store_flagged_then_fail(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> None:
    """Store a flagged PHQ-9 and raise its alert, then fail before the commit."""
    with app.state.write_sessions() as session, session.begin():
        row = measurements.create(
            session,
            app.state.registry,
            measurements.NewMeasurement(
                clinic_id=clinic.id,
                patient_id=uuid.UUID(patient_id),
                instrument="phq9",
                items=phq9(14, item9=2),
                measured_at=day(0),
                source=Source.API,
            ),
        )
        raise_alerts_for(session, row)
        raised = select(func.count()).select_from(RiskAlert).where(RiskAlert.measurement_id == row.measurement_id)
        assert session.scalar(raised) == 1
        raise RuntimeError("abort")


def test_nothing_is_sent_when_the_transaction_rolls_back(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)

    with pytest.raises(RuntimeError, match="abort"):
        store_flagged_then_fail(app, clinic, patient_id)
    webhooks.wait_for_deliveries()

    assert receiver.calls == []
    assert deliveries(app, clinic) == []


def test_no_webhook_no_outbox(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=2), day(0))

    assert deliveries(app, clinic) == []
