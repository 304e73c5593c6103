"""The alert webhook, against real HTTP servers on 127.0.0.1: ids and the flag only, sent by its job after commit
(``run_jobs``: the in-process runner on SQLite, a procrastinate worker on PostgreSQL), signed per
Standard Webhooks (verified here with the specification's own Python library, as a receiver would), never to an
internal address, never following a redirect."""

from __future__ import annotations

import ssl
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update
from standardwebhooks import Webhook, WebhookVerificationError

from app.auth.permissions import Role
from app.clinical import destinations, recording, webhooks
from app.clinical.models import ClinicSettings, RiskAlert, WebhookDelivery
from app.core.config import DEVELOPMENT_WEBHOOK_KEY, Settings
from app.core.db import utcnow
from app.core.jobs import defer
from app.core.state import state_of
from app.idempotency.models import IdempotencyRecord
from app.instruments.registry import InstrumentRegistry
from app.measurements import service as measurements
from app.measurements.schemas import Source
from tests.clinical.conftest import (
    PUBLIC_ADDRESS,
    TLS,
    AllowPrivate,
    FakeResolver,
    Receiver,
    day,
    deliveries,
    phq9,
    running_receiver,
    seed,
    set_webhook,
)
from tests.conftest import ClinicKeys, run_jobs


def verified(secret: str, receiver: Receiver, call: int = 0) -> Any:
    """The payload of a call as a Standard Webhooks receiver verifies it (raises if the signature does not hold)."""
    return Webhook(secret).verify(receiver.bodies[call], receiver.calls[call][0])


def test_an_alert_calls_the_webhook_with_ids_and_the_flag_only(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)

    row = seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)

    [(headers, payload)] = receiver.calls
    with state_of(app).read_sessions() as db:
        alert = db.scalars(select(RiskAlert).where(RiskAlert.measurement_id == row.measurement_id)).one()
    assert payload == {
        "event": "risk_alert.raised",
        "alert_id": str(alert.id),
        "clinic_id": str(clinic.id),
        "patient_id": patient_id,
        "measurement_id": str(row.measurement_id),
        "flag": "item9_positive",
    }
    assert headers["content-type"] == "application/json"
    [delivery] = deliveries(app, clinic)
    assert headers["webhook-id"] == str(delivery.id)
    assert delivery.delivered_at is not None
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 204, None)


def test_an_alert_raised_by_a_posted_measurement_is_delivered_after_its_commit(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    """Through the API the ingest's transaction may be on the event loop (PostgreSQL, asyncpg): its delivery job is
    deferred in it all the same, and run after the commit."""
    set_webhook(client, clinic, receiver.url)
    body = {"instrument": "phq9", "items": phq9(14, item9=3), "measured_at": "2026-11-20T09:30:00+01:00"}

    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    run_jobs(app)

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
    run_jobs(app)

    with state_of(app).read_sessions() as db:
        alerts = {str(alert.id) for alert in db.scalars(select(RiskAlert).where(RiskAlert.clinic_id == clinic.id))}
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
    run_jobs(app)
    [failed] = deliveries(app, clinic)
    receiver.status = 200
    assert failed.next_attempt_at is not None
    run_jobs(app, now=failed.next_attempt_at)
    [delivered] = deliveries(app, clinic)

    assert (failed.status, failed.attempts, failed.last_status, failed.last_error) == ("pending", 1, 503, "HTTP 503")
    assert failed.delivered_at is None
    assert (delivered.status, delivered.attempts, delivered.last_status) == ("delivered", 2, 200)
    assert delivered.delivered_at is not None
    assert delivered.next_attempt_at is None
    assert len(receiver.calls) == 2
    assert receiver.calls[0][1] == receiver.calls[1][1]
    assert receiver.calls[0][0]["webhook-id"] == receiver.calls[1][0]["webhook-id"]


def store_flagged_then_fail(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> None:
    """Store a flagged PHQ-9 and raise its alert, then fail before the commit."""
    with state_of(app).write_sessions() as db, db.begin():
        new = measurements.new_measurement(
            state_of(app).part(InstrumentRegistry),
            "phq9",
            clinic_id=clinic.id,
            patient_id=uuid.UUID(patient_id),
            items=phq9(14, item9=2),
            measured_at=day(0),
            source=Source.API,
        )
        row = recording.record_one(db, new)
        raised = select(func.count()).select_from(RiskAlert).where(RiskAlert.measurement_id == row["measurement_id"])
        assert db.scalar(raised) == 1
        raise RuntimeError("abort")


def test_nothing_is_sent_when_the_transaction_rolls_back(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)

    with pytest.raises(RuntimeError, match="abort"):
        store_flagged_then_fail(app, clinic, patient_id)
    run_jobs(app)

    assert receiver.calls == []
    assert deliveries(app, clinic) == []


def test_no_webhook_no_outbox(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=2), day(0))

    assert deliveries(app, clinic) == []


# --- Never an internal address -------------------------------------------------------------------------------------

LOOPBACK_OR_PRIVATE_URLS = [
    "http://127.0.0.1/hooks",
    "http://2130706433/hooks",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/hooks",  # ... in hex
    "http://0177.0.0.1/hooks",  # ... with an octal first part
    "http://127.1/hooks",  # ... shortened
    "http://localhost/hooks",
    "http://[::1]/hooks",
    "http://10.0.0.1/hooks",
    "http://172.16.0.1/hooks",
    "http://192.168.1.1/hooks",
    "http://[fc00::1]/hooks",  # unique-local
    "http://[fd00:ec2::254]/latest/meta-data/",  # unique-local (AWS's IPv6 metadata address)
]
"""Refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is on."""

NEVER_ALLOWED_URLS = [
    "http://0.0.0.0/hooks",
    "http://0/hooks",
    "http://[::]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/hooks",  # IPv4-mapped 169.254.169.254
    "http://[::127.0.0.1]/hooks",  # IPv4-compatible
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/hooks",
    "http://100.64.0.1/hooks",  # carrier-grade NAT
    "http://224.0.0.1/hooks",
    "http://[ff02::1]/hooks",
    "http://240.0.0.1/hooks",
    "http://255.255.255.255/hooks",
    "http://[2002:7f00:1::1]/hooks",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hooks",  # NAT64 of 169.254.169.254
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hooks",  # Teredo
    "http://metadata.clinic.example/hooks",  # a name resolving to the metadata address
    "http://split.clinic.example/hooks",  # a name resolving to a public and a link-local address
    "https://user:password@hooks.clinic.example/hooks",  # a public host, but credentials in the URL
]
"""Refused even with WEBHOOK_ALLOW_PRIVATE_NETWORKS on: it opens loopback and private addresses, nothing else."""


def internal_names(resolver: FakeResolver) -> None:
    resolver.answers |= {
        "localhost": ["127.0.0.1", "::1"],
        "metadata.clinic.example": ["169.254.169.254"],
        "split.clinic.example": [PUBLIC_ADDRESS, "169.254.10.1"],
        "hooks.clinic.example": [PUBLIC_ADDRESS],
    }


@pytest.mark.parametrize("url", LOOPBACK_OR_PRIVATE_URLS + NEVER_ALLOWED_URLS)
def test_webhooks_never_reach_internal_addresses(
    client: TestClient, clinic: ClinicKeys, resolver: FakeResolver, allow_private_networks: AllowPrivate, url: str
) -> None:
    allow_private_networks(False)
    internal_names(resolver)

    response = client.put("/v1/clinic/settings", json={"webhook_url": url}, headers=clinic.headers(Role.ADMIN))
    stored = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN)).json()

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "webhook_url"
    assert error["detail"]
    assert stored["webhook_url"] is None


@pytest.mark.parametrize("url", NEVER_ALLOWED_URLS)
def test_allowing_private_networks_never_opens_link_local_multicast_reserved_or_mapped_addresses(
    client: TestClient, clinic: ClinicKeys, resolver: FakeResolver, allow_private_networks: AllowPrivate, url: str
) -> None:
    allow_private_networks(True)
    internal_names(resolver)

    response = client.put("/v1/clinic/settings", json={"webhook_url": url}, headers=clinic.headers(Role.ADMIN))

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["webhook_url"]


def test_a_public_webhook_is_accepted_and_private_ones_only_when_allowed(
    client: TestClient, clinic: ClinicKeys, resolver: FakeResolver, allow_private_networks: AllowPrivate
) -> None:
    allow_private_networks(False)
    internal_names(resolver)
    headers = clinic.headers(Role.ADMIN)

    public = client.put("/v1/clinic/settings", json={"webhook_url": "https://hooks.clinic.example/a"}, headers=headers)
    private_refused = client.put("/v1/clinic/settings", json={"webhook_url": "http://10.0.0.1/a"}, headers=headers)
    allow_private_networks(True)
    private_allowed = client.put("/v1/clinic/settings", json={"webhook_url": "http://10.0.0.1/a"}, headers=headers)

    assert public.status_code == 200, public.text
    assert private_refused.status_code == 422
    assert private_allowed.status_code == 200, private_allowed.text


def test_a_webhook_host_is_looked_up_only_for_an_authorised_admin(
    client: TestClient, clinic: ClinicKeys, resolver: FakeResolver
) -> None:
    """No DNS lookup on behalf of a caller who may not set the webhook."""
    body = {"webhook_url": "https://lookup.clinic.example/hooks"}

    anonymous = client.put("/v1/clinic/settings", json=body)
    clinician = client.put("/v1/clinic/settings", json=body, headers=clinic.headers(Role.CLINICIAN))
    admin = client.put("/v1/clinic/settings", json=body, headers=clinic.headers(Role.ADMIN))

    assert (anonymous.status_code, clinician.status_code, admin.status_code) == (401, 403, 422)
    assert resolver.lookups == ["lookup.clinic.example"]


def outbox_rows(app: FastAPI, template: WebhookDelivery, urls: list[str]) -> None:
    """Deliveries like ``template`` (same clinic and payload) to other URLs, as if stored earlier, with their jobs."""
    with state_of(app).write_sessions() as db, db.begin():
        for url in urls:
            row = WebhookDelivery(
                clinic_id=template.clinic_id,
                event=template.event,
                dedupe_key=f"test:{uuid.uuid4()}",
                url=url,
                payload=template.payload,
                attempts=0,
            )
            db.add(row)
            db.flush()
            defer(db, webhooks.DELIVER_TASK, args={"delivery_id": str(row.id)})


def forms_of_the_receiver(receiver: Receiver) -> list[str]:
    """URLs that all lead to the receiver on 127.0.0.1, in the forms a resolver reads."""
    hosts = ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost", "[::ffff:127.0.0.1]"]
    return [f"http://{host}:{receiver.port}/hooks/alerts" for host in hosts]


def test_deliveries_never_reach_internal_addresses(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    receiver: Receiver,
    resolver: FakeResolver,
    allow_private_networks: AllowPrivate,
) -> None:
    """Checked again before each attempt: URLs stored before the check existed, or while private networks were
    allowed, reach nothing internal once they are not. The same URLs do reach the receiver when allowed (but the
    IPv4-mapped one), so the refusal is the check's, not a broken URL's."""
    resolver.answers["localhost"] = ["127.0.0.1"]
    set_webhook(client, clinic, receiver.url)
    allow_private_networks(False)
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)
    [first] = deliveries(app, clinic)
    urls = forms_of_the_receiver(receiver)

    outbox_rows(app, first, urls)
    run_jobs(app)
    refused_rows = deliveries(app, clinic)
    calls_while_refused = len(receiver.calls)
    allow_private_networks(True)
    outbox_rows(app, first, urls)
    run_jobs(app)

    assert calls_while_refused == 0
    assert len(refused_rows) == 1 + len(urls)
    for row in refused_rows:
        assert row.delivered_at is None
        assert str(row.last_error).startswith("refused: "), row.last_error
        assert row.last_status is None
    assert len(receiver.calls) == len(urls) - 1


def test_a_name_is_resolved_and_checked_again_at_delivery(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    resolver: FakeResolver,
    allow_private_networks: AllowPrivate,
) -> None:
    """The name was public when the admin set it, then points at 127.0.0.1 (DNS rebinding): nothing is sent."""
    allow_private_networks(False)
    with running_receiver() as internal:
        resolver.answers["hooks.clinic.example"] = [PUBLIC_ADDRESS]
        set_webhook(client, clinic, f"http://hooks.clinic.example:{internal.port}/hooks/alerts")
        resolver.answers["hooks.clinic.example"] = ["127.0.0.1"]

        seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
        run_jobs(app)

        [delivery] = deliveries(app, clinic)
        assert internal.calls == []
        assert delivery.delivered_at is None
        assert delivery.last_error == (
            "refused: hooks.clinic.example resolves to 127.0.0.1, a loopback address: webhooks go only to public "
            "addresses"
        )


def test_a_delivery_connects_to_the_address_it_vetted(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    resolver: FakeResolver,
    allow_private_networks: AllowPrivate,
) -> None:
    """A name answering differently from one lookup to the next: the call goes to the address that was checked,
    named by its host, and the name is looked up once per attempt."""
    allow_private_networks(True)
    with running_receiver("127.0.0.1") as vetted, running_receiver("127.0.0.2", vetted.port) as other:
        url = f"http://rebind.clinic.example:{vetted.port}/hooks/alerts"
        resolver.answers["rebind.clinic.example"] = ["127.0.0.1"]
        set_webhook(client, clinic, url)
        resolver.then["rebind.clinic.example"] = [["127.0.0.1"], ["127.0.0.2"]]
        lookups_before = len(resolver.lookups)

        seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
        run_jobs(app)

        [(headers, _payload)] = vetted.calls
        assert headers["host"] == f"rebind.clinic.example:{vetted.port}"
        assert other.calls == []
        assert resolver.lookups[lookups_before:] == ["rebind.clinic.example"]


def test_a_redirect_is_not_followed(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    with running_receiver() as target:
        set_webhook(client, clinic, receiver.url)
        receiver.status, receiver.location = 307, target.url

        seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
        run_jobs(app)

        [delivery] = deliveries(app, clinic)
        assert len(receiver.calls) == 1
        assert target.calls == []
        assert (delivery.last_status, delivery.delivered_at) == (307, None)
        assert delivery.last_error == "HTTP 307: redirects are not followed"


def test_https_deliveries_name_the_host_and_verify_its_certificate(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    resolver: FakeResolver,
    allow_private_networks: AllowPrivate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connected to the vetted address, the TLS handshake still names the host (SNI) and the certificate is checked
    against the host name: a certificate for another name fails the delivery."""
    allow_private_networks(True)
    monkeypatch.setattr(destinations, "_TLS", ssl.create_default_context(cafile=TLS / "ca.pem"))
    resolver.answers |= {"hooks.clinic.example": ["127.0.0.1"], "other.clinic.example": ["127.0.0.1"]}
    with running_receiver(tls=True) as receiver:
        secret = set_webhook(client, clinic, f"https://hooks.clinic.example:{receiver.port}/a")["webhook_secret"]
        seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
        run_jobs(app)
        set_webhook(client, clinic, f"https://other.clinic.example:{receiver.port}/a")
        seed(app, clinic, patient_id, "phq9", phq9(15, item9=3), day(7))
        run_jobs(app)

        delivered, mismatched = deliveries(app, clinic)
        [(headers, payload)] = receiver.calls
        assert (delivered.last_status, delivered.last_error) == (204, None)
        assert receiver.server_names[0] == "hooks.clinic.example"
        assert headers["host"] == f"hooks.clinic.example:{receiver.port}"
        assert verified(secret, receiver) == payload
        assert mismatched.delivered_at is None
        assert mismatched.last_error == "SSLCertVerificationError"


def test_webhooks_are_https_only_in_production(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    receiver: Receiver,
    resolver: FakeResolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver.answers["hooks.clinic.example"] = [PUBLIC_ADDRESS]
    set_webhook(client, clinic, receiver.url)
    monkeypatch.setattr(state_of(app).settings, "environment", "production")
    headers = clinic.headers(Role.ADMIN)

    plain = client.put("/v1/clinic/settings", json={"webhook_url": "http://hooks.clinic.example/a"}, headers=headers)
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)
    tls = client.put("/v1/clinic/settings", json={"webhook_url": "https://hooks.clinic.example/a"}, headers=headers)

    assert plain.status_code == 422
    assert plain.json()["errors"][0]["field"] == "webhook_url"
    assert "https" in plain.json()["errors"][0]["detail"]
    [delivery] = deliveries(app, clinic)
    assert receiver.calls == []
    assert delivery.last_error == "refused: must be an https URL in production"
    assert tls.status_code == 200, tls.text


# --- Signed per Standard Webhooks ----------------------------------------------------------------------------------


def test_every_delivery_is_signed_per_standard_webhooks(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    secret = set_webhook(client, clinic, receiver.url)["webhook_secret"]

    seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)

    [(headers, payload)] = receiver.calls
    [delivery] = deliveries(app, clinic)
    assert secret.startswith("whsec_")
    assert verified(secret, receiver) == payload
    assert headers["webhook-id"] == str(delivery.id)
    assert int(headers["webhook-timestamp"]) > 0
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(receiver.bodies[0] + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(receiver.bodies[0], headers)


def test_each_clinic_signs_with_its_own_secret(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, receiver: Receiver
) -> None:
    ours = set_webhook(client, clinic, receiver.url)["webhook_secret"]
    theirs = set_webhook(client, other_clinic, receiver.url)["webhook_secret"]

    assert ours != theirs


def test_the_signing_secret_is_shown_once(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    """In the response that set the webhook up (or rotated its secret) only: never again, never stored."""
    first = set_webhook(client, clinic, receiver.url)
    again = set_webhook(client, clinic, receiver.url)
    got = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN))
    rotated = client.post(
        "/v1/clinic/webhook-secret", headers=clinic.headers(Role.ADMIN, {"Idempotency-Key": str(uuid.uuid4())})
    )

    secret, new_secret = first["webhook_secret"], rotated.json()["secret"]
    assert secret
    assert again["webhook_secret"] is None
    assert "webhook_secret" not in got.json()
    assert got.json()["webhook_secret_issued_at"] is not None
    assert rotated.status_code == 201, rotated.text
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    with state_of(app).read_sessions() as db:
        [settings] = db.execute(select(ClinicSettings).where(ClinicSettings.clinic_id == clinic.id)).all()
        records = db.scalars(select(IdempotencyRecord)).all()
        stored = repr([vars(settings[0]), *(vars(record) for record in records)])
    for shown in (secret, new_secret):
        assert shown.removeprefix("whsec_") not in stored


def test_a_replayed_rotation_never_repeats_the_secret(
    client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url)
    headers = clinic.headers(Role.ADMIN, {"Idempotency-Key": str(uuid.uuid4())})

    first = client.post("/v1/clinic/webhook-secret", headers=headers)
    replay = client.post("/v1/clinic/webhook-secret", headers=headers)

    assert first.status_code == 201, first.text
    assert first.json()["secret"] not in replay.text


def test_a_rotated_secret_signs_alongside_the_previous_one_for_a_day(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    old = set_webhook(client, clinic, receiver.url)["webhook_secret"]
    rotated = client.post("/v1/clinic/webhook-secret", headers=clinic.headers(Role.ADMIN)).json()
    new = rotated["secret"]

    seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)
    with state_of(app).write_sessions() as db, db.begin():
        db.execute(
            update(ClinicSettings)
            .where(ClinicSettings.clinic_id == clinic.id)
            .values(webhook_secret_issued_at=utcnow() - timedelta(hours=24, seconds=1))
        )
    seed(app, clinic, patient_id, "phq9", phq9(15, item9=3), day(7))
    run_jobs(app)

    assert rotated["previous_valid_until"] is not None
    assert len(receiver.calls[0][0]["webhook-signature"].split(" ")) == 2
    assert verified(new, receiver, 0) == verified(old, receiver, 0) == receiver.calls[0][1]
    assert receiver.calls[1][0]["webhook-signature"].count("v1,") == 1
    assert verified(new, receiver, 1) == receiver.calls[1][1]
    with pytest.raises(WebhookVerificationError):
        verified(old, receiver, 1)


def test_rotating_without_a_webhook_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post("/v1/clinic/webhook-secret", headers=clinic.headers(Role.ADMIN))
    clinician = client.post("/v1/clinic/webhook-secret", headers=clinic.headers(Role.CLINICIAN))

    assert response.status_code == 409
    assert clinician.status_code == 403


def test_nothing_is_sent_unsigned(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver
) -> None:
    """A clinic whose webhook has no signing secret (none can be made so through the API) gets no delivery."""
    set_webhook(client, clinic, receiver.url)
    with state_of(app).write_sessions() as db, db.begin():
        db.execute(update(ClinicSettings).where(ClinicSettings.clinic_id == clinic.id).values(webhook_secret_salt=None))

    seed(app, clinic, patient_id, "phq9", phq9(14, item9=3), day(0))
    run_jobs(app)

    [delivery] = deliveries(app, clinic)
    assert receiver.calls == []
    assert delivery.last_error == "not sent unsigned: the clinic has no webhook signing secret"


def test_production_refuses_the_development_webhook_signing_key() -> None:
    def production(signing_key: str) -> Settings:
        return Settings(
            environment="production",
            api_key_pepper=SecretStr("a-real-pepper"),
            research_pseudonym_key=SecretStr("a-real-key"),
            webhook_signing_key=SecretStr(signing_key),
            public_base_url="https://api.clinic.example",
        )

    with pytest.raises(ValueError, match="WEBHOOK_SIGNING_KEY"):
        production(DEVELOPMENT_WEBHOOK_KEY)
    settings = production("a-real-signing-key")

    assert settings.webhook_allow_private_networks is False
