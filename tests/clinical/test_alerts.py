"""Risk alerts: every item-9 flag raises one, listed unacknowledged first, acknowledged once with an audited note."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.clinical import recording
from app.clinical.alerts import raise_alerts_for
from app.clinical.models import RiskAlert
from app.core.db import transaction
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.measurements import service as measurements
from tests.clinical.conftest import day, fscrs, new_patient, phq9, seed
from tests.conftest import ClinicKeys


def alerts_of(client: TestClient, clinic: ClinicKeys, **query: str) -> list[dict[str, Any]]:
    response = client.get("/v1/clinic/alerts", params=query, headers=clinic.headers())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def alert_count(app: FastAPI, patient_id: str) -> int:
    with state_of(app).read_sessions() as db:
        query = select(func.count()).select_from(RiskAlert).where(RiskAlert.patient_id == uuid.UUID(patient_id))
        return int(db.scalar(query) or 0)


def test_a_phq9_posted_through_the_api_with_item9_endorsed_raises_an_alert(
    client: TestClient, clinic: ClinicKeys
) -> None:
    patient_id = new_patient(client, clinic, external_id="MRN-9")
    body = {"instrument": "phq9", "items": phq9(5, item9=1), "measured_at": day(0).isoformat()}

    posted = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    assert posted.status_code == 201, posted.text
    [alert] = alerts_of(client, clinic)
    assert alert["flag"] == "item9_positive"
    assert alert["patient"] == {
        "id": patient_id,
        "identifiers": [{"system": "urn:compassion-outcomes:external-id", "value": "MRN-9"}],
    }
    assert alert["measurement"]["id"] == posted.json()["id"]


def test_phq9_bdi2_and_fscrs_item9_each_raise_one_alert_a_missing_one_a_routine_prompt_and_a_zero_none(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=3), day(0))
    seed(app, clinic, patient_id, "bdi2", {str(n): 1 for n in range(1, 22)}, day(1))
    seed(app, clinic, patient_id, "fscrs", fscrs(item9=1), day(2))
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=0), day(3))
    seed(app, clinic, patient_id, "phq9", {**phq9(12, item9=0), "9": None}, day(4))
    seed(app, clinic, patient_id, "fscrs", fscrs(item9=0), day(5))

    listed = alerts_of(client, clinic)

    assert sorted((a["instrument"], a["kind"], a["priority"], a["item_value"]) for a in listed) == [
        ("bdi2", "item9_positive", "urgent", 1),
        ("fscrs", "item9_endorsed", "urgent", 1),
        ("phq9", "item9_missing", "routine", None),
        ("phq9", "item9_positive", "urgent", 3),
    ]
    assert all(a["acknowledged"] is False and a["flag"] == a["kind"] for a in listed)


def test_an_amendment_that_keeps_the_flag_raises_no_second_alert(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    row = seed(app, clinic, patient_id, "phq9", phq9(12, item9=2), day(0))

    for db in transaction(state_of(app).write_sessions):
        current = measurements.get_current(
            db, clinic_id=clinic.id, patient_id=row.patient_id, measurement_id=row.measurement_id
        )
        new = measurements.new_version(
            state_of(app).part(InstrumentRegistry), current, items=phq9(13, item9=1), recorded_by_key_id=None
        )
        amended = recording.record_version(db, current, new, reason="item 1 misread")
        assert raise_alerts_for(db, amended) == []

    [alert] = alerts_of(client, clinic)
    assert alert["measurement"]["version"] == 1
    assert alert["measurement"]["current"] is False
    assert alert_count(app, patient_id) == 1


def test_alerts_are_listed_unacknowledged_first_with_the_clinics_crisis_text(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    crisis = "Same-day risk review; crisis line 555-0100."
    client.put("/v1/clinic/settings", json={"crisis_text": crisis}, headers=clinic.headers(Role.ADMIN))
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=1), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=2), day(7))
    newest, oldest = alerts_of(client, clinic)
    ack = client.post(
        f"/v1/clinic/alerts/{newest['id']}/acknowledge",
        json={"note": "Discussed in session 2; safety plan reviewed."},
        headers=clinic.headers(),
    )
    assert ack.status_code == 200, ack.text

    listed = alerts_of(client, clinic)
    pending = alerts_of(client, clinic, acknowledged="false")

    assert [a["id"] for a in listed] == [oldest["id"], newest["id"]]
    assert [a["id"] for a in pending] == [oldest["id"]]
    assert all(a["crisis_text"] == crisis for a in listed)


def test_acknowledgement_records_who_when_and_the_note_and_happens_once(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=1), day(0))
    [alert] = alerts_of(client, clinic)
    path = f"/v1/clinic/alerts/{alert['id']}/acknowledge"

    first = client.post(path, json={"note": "Called the patient; no current intent."}, headers=clinic.headers())
    second = client.post(path, json={"note": "again"}, headers=clinic.headers(Role.ADMIN))
    read = client.get(f"/v1/clinic/alerts/{alert['id']}", headers=clinic.headers()).json()

    assert first.status_code == 200, first.text
    assert read["acknowledged"] is True
    assert read["acknowledged_by_key_id"] == str(clinic.key_ids[Role.CLINICIAN])
    assert read["acknowledgement_note"] == "Called the patient; no current intent."
    assert read["acknowledged_at"] is not None
    assert second.status_code == 409


def test_acknowledging_with_an_idempotency_key_replays(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=1), day(0))
    [alert] = alerts_of(client, clinic)
    headers = clinic.headers(extra={"Idempotency-Key": "ack-1"})
    path = f"/v1/clinic/alerts/{alert['id']}/acknowledge"

    first = client.post(path, json={"note": "Seen."}, headers=headers)
    retry = client.post(path, json={"note": "Seen."}, headers=headers)

    assert first.status_code == retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"


def test_a_note_is_required(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=1), day(0))
    [alert] = alerts_of(client, clinic)

    response = client.post(f"/v1/clinic/alerts/{alert['id']}/acknowledge", json={"note": ""}, headers=clinic.headers())

    assert response.status_code == 422
    assert alerts_of(client, clinic)[0]["acknowledged"] is False


def test_another_clinics_alerts_are_invisible(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=1), day(0))
    [alert] = alerts_of(client, clinic)

    assert alerts_of(client, other_clinic) == []
    assert client.get(f"/v1/clinic/alerts/{alert['id']}", headers=other_clinic.headers()).status_code == 404
    ack = client.post(
        f"/v1/clinic/alerts/{alert['id']}/acknowledge", json={"note": "x"}, headers=other_clinic.headers()
    )
    assert ack.status_code == 404


def test_roles_without_alert_permissions_are_refused(client: TestClient, clinic: ClinicKeys) -> None:
    assert client.get("/v1/clinic/alerts", headers=clinic.headers(Role.INTEGRATION)).status_code == 403
    acknowledge = client.post(
        f"/v1/clinic/alerts/{uuid.uuid4()}/acknowledge", json={"note": "x"}, headers=clinic.headers(Role.RESEARCHER)
    )
    assert acknowledge.status_code == 403
