"""Report links: a short-lived URL that opens one patient's report without a key; read-only, revocable, audited."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.clinical.models import ReportLink
from app.core.datetimes import CLOCK
from app.core.db import transaction
from app.core.state import state_of
from tests.clinical.conftest import day, phq9, seed
from tests.conftest import TEST_PEPPER, ClinicKeys

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def at_noon() -> Iterator[None]:
    with CLOCK.frozen_at(NOW):
        yield


def make_link(client: TestClient, clinic: ClinicKeys, patient_id: str, minutes: int = 15) -> dict[str, str]:
    response = client.post(
        f"/v1/patients/{patient_id}/report-links", json={"valid_minutes": minutes}, headers=clinic.headers()
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def path_of(url: str) -> str:
    return "/v1/report-links/" + url.rsplit("/", 1)[1]


def link_events(app: FastAPI, link_id: str) -> list[tuple[int, uuid.UUID | None, uuid.UUID | None, object, str]]:
    """``(status, patient, clinic, key, route)`` of each use of the link (its page's route), in order."""
    columns = (AuditEvent.status_code, AuditEvent.patient_id, AuditEvent.clinic_id, AuditEvent.key_id, AuditEvent.route)
    query = (
        select(*columns)
        .where(AuditEvent.resource_id == link_id, AuditEvent.route == "/v1/report-links/{token}")
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    )
    for db in transaction(state_of(app).write_sessions):
        return [tuple(row) for row in db.execute(query)]  # type: ignore[misc]
    return []


def test_a_link_opens_the_report_without_a_key_until_it_expires(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, at_noon: None
) -> None:
    patient_id = client.post(
        "/v1/patients", json={"identifiers": [{"system": "urn:mrn", "value": "MRN-LINK-1"}]}, headers=clinic.headers()
    ).json()["id"]
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=1), day(0))
    link = make_link(client, clinic, patient_id, minutes=15)
    assert link["expires_at"].startswith("2026-03-02T12:15:00")

    opened = client.get(path_of(link["url"]))

    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"].startswith("text/html")
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"
    assert opened.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in opened.headers["content-security-policy"]
    assert "MRN-LINK-1" in opened.text
    assert patient_id not in opened.text
    assert 'id="link-notice"' in opened.text
    assert 'id="alerts"' in opened.text  # a clinician may read alerts, so the link shows them

    CLOCK.move_to(NOW + timedelta(minutes=15))
    expired = client.get(path_of(link["url"]))

    assert expired.status_code == 410
    assert expired.headers["content-type"] == "application/problem+json"
    assert expired.json()["detail"] == "this report link has expired; ask for a new one"
    assert "MRN-LINK-1" not in expired.text
    route = "/v1/report-links/{token}"
    assert link_events(app, link["id"]) == [
        (200, uuid.UUID(patient_id), clinic.id, None, route),
        (410, uuid.UUID(patient_id), clinic.id, None, route),
    ]


def test_a_revoked_link_is_refused_and_listed_as_revoked(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, at_noon: None
) -> None:
    link = make_link(client, clinic, patient_id)
    revoked = client.post(f"/v1/patients/{patient_id}/report-links/{link['id']}/revoke", headers=clinic.headers())

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    refused = client.get(path_of(link["url"]))
    assert refused.status_code == 410
    assert refused.json()["detail"] == "this report link was revoked; ask for a new one"
    listed = client.get(f"/v1/patients/{patient_id}/report-links", headers=clinic.headers()).json()["items"]
    assert [(item["id"], item["status"]) for item in listed] == [(link["id"], "revoked")]


def test_an_unknown_token_is_not_found_and_the_token_is_never_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    link = make_link(client, clinic, patient_id)
    token = link["url"].rsplit("/", 1)[1]
    made_up = "A" * 43

    assert client.get(f"/v1/report-links/{made_up}").status_code == 404
    assert client.get("/v1/report-links/short").status_code == 422
    for db in transaction(state_of(app).write_sessions):
        row = db.get(ReportLink, uuid.UUID(link["id"]))
        assert row is not None
        assert row.token_hash == hmac.new(TEST_PEPPER.encode(), token.encode(), hashlib.sha256).hexdigest()
        assert db.scalar(select(AuditEvent.id).where(AuditEvent.resource_id.in_([token, made_up]))) is None


@pytest.mark.parametrize("minutes", [0, 61, -5])
def test_the_validity_is_one_to_sixty_minutes(
    client: TestClient, clinic: ClinicKeys, patient_id: str, minutes: int
) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/report-links", json={"valid_minutes": minutes}, headers=clinic.headers()
    )

    assert response.status_code == 422
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == ["valid_minutes"]


def test_a_link_shows_no_alerts_when_its_creator_may_not_read_them(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(14, item9=1), day(0))
    response = client.post(f"/v1/patients/{patient_id}/report-links", json={}, headers=clinic.headers(Role.INTEGRATION))
    assert response.status_code == 201, response.text

    html = client.get(path_of(response.json()["url"])).text

    assert 'id="alerts"' not in html


def test_another_clinic_cannot_make_list_or_revoke_links_for_a_patient(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    link = make_link(client, clinic, patient_id)
    base = f"/v1/patients/{patient_id}/report-links"

    assert client.post(base, json={}, headers=other_clinic.headers()).status_code == 404
    assert client.get(base, headers=other_clinic.headers()).status_code == 404
    assert client.post(f"{base}/{link['id']}/revoke", headers=other_clinic.headers()).status_code == 404


def test_the_clinic_chooses_which_origins_may_frame_a_link(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    settings = {"report_frame_origins": ["https://ehr.example.org", "https://ehr2.example.org:8443"]}
    assert client.put("/v1/clinic/settings", json=settings, headers=clinic.headers(Role.ADMIN)).status_code == 200
    link = make_link(client, clinic, patient_id)

    opened = client.get(path_of(link["url"]))

    policy = opened.headers["content-security-policy"]
    assert policy.endswith("frame-ancestors https://ehr.example.org https://ehr2.example.org:8443")
    assert "x-frame-options" not in opened.headers
    bad = {"report_frame_origins": ["https://ehr.example.org; script-src *"]}
    refused = client.put("/v1/clinic/settings", json=bad, headers=clinic.headers(Role.ADMIN))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"].startswith("report_frame_origins")


def test_a_link_token_is_no_credential_anywhere_else(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    token = make_link(client, clinic, patient_id)["url"].rsplit("/", 1)[1]
    as_bearer = {"Authorization": f"Bearer {token}"}

    for path in (f"/v1/patients/{patient_id}/report", f"/v1/patients/{patient_id}/report-links", "/v1/clinic/caseload"):
        assert client.get(path, headers=as_bearer).status_code == 401, path
    assert client.post(f"/v1/report-links/{token}").status_code == 405
