"""Alerts that never miss (issue 21): an amendment raising item 9 raises a new alert carrying the new answer and
clears none; a missing item 9 raises a routine prompt, paged only where the clinic says so; alerts from history older
than the clinic's ``historical_alert_days`` are marked historical and never paged, on every path in (REST, bulk import,
FHIR POST and Bundle)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.scoring.engine import Answer
from tests.clinical.conftest import Receiver, deliveries, new_patient, phq9, set_webhook
from tests.clinical.test_alerts import alerts_of
from tests.conftest import ClinicKeys
from tests.fhir.conftest import SDC_QUESTIONNAIRE, about, fixture, register, send

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RECENT = NOW - timedelta(hours=1)
OLD = NOW - timedelta(days=20)
"""Older than the default ``historical_alert_days`` (14), younger than 30."""

CSV_HEADER = ",".join(
    ["external_id", "instrument", "measured_at", "session_number", *(f"item_{n}" for n in range(1, 10))]
)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with CLOCK.frozen_at(NOW):
        yield


def post(client: TestClient, clinic: ClinicKeys, patient_id: str, items: dict[str, Answer], at: datetime) -> str:
    body = {"instrument": "phq9", "items": items, "measured_at": at.isoformat()}
    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def amend(
    client: TestClient, clinic: ClinicKeys, patient_id: str, measurement_id: str, items: dict[str, Answer]
) -> None:
    response = client.post(
        f"/v1/patients/{patient_id}/measurements/{measurement_id}/amend",
        json={"items": items, "reason": "answer misread"},
        headers=clinic.headers(),
    )
    assert response.status_code == 201, response.text


def settings(client: TestClient, clinic: ClinicKeys, **body: Any) -> dict[str, Any]:
    response = client.put("/v1/clinic/settings", json=body, headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text
    read: dict[str, Any] = response.json()
    return read


def missing_item9() -> dict[str, Answer]:
    return {**phq9(12, item9=0), "9": None}


def test_an_amendment_raising_item9_after_the_alert_was_acknowledged_raises_a_new_alert_and_clears_none(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url, historical_alert_days=14)
    patient_id = new_patient(client, clinic)
    measurement_id = post(client, clinic, patient_id, phq9(12, item9=1), RECENT)
    [first] = alerts_of(client, clinic)
    acknowledged = client.post(
        f"/v1/clinic/alerts/{first['id']}/acknowledge", json={"note": "Risk assessed."}, headers=clinic.headers()
    )
    assert acknowledged.status_code == 200, acknowledged.text

    amend(client, clinic, patient_id, measurement_id, phq9(12, item9=3))  # 1 -> 3: a new alert
    amend(client, clinic, patient_id, measurement_id, phq9(12, item9=2))  # lower than 3: nothing
    amend(client, clinic, patient_id, measurement_id, phq9(12, item9=0))  # unflagged: nothing raised or cleared
    amend(client, clinic, patient_id, measurement_id, phq9(12, item9=3))  # not above 3: nothing

    listed = alerts_of(client, clinic)
    assert sorted((a["item_value"], a["measurement"]["version"], a["acknowledged"]) for a in listed) == [
        (1, 1, True),
        (3, 2, False),
    ]
    assert {(a["kind"], a["priority"], a["historical"]) for a in listed} == {("item9_positive", "urgent", False)}
    assert len(deliveries(app, clinic)) == 2


def test_a_missing_item9_raises_a_routine_prompt_listed_with_the_alerts_and_paged_only_when_the_clinic_says(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url, historical_alert_days=14)
    patient_id = new_patient(client, clinic)
    unasked = post(client, clinic, patient_id, missing_item9(), RECENT)

    [prompt] = alerts_of(client, clinic)
    assert (prompt["kind"], prompt["priority"], prompt["item_value"]) == ("item9_missing", "routine", None)
    assert alerts_of(client, clinic, kind="item9_missing") == [prompt]
    assert alerts_of(client, clinic, priority="urgent") == []
    assert deliveries(app, clinic) == []

    shown = settings(client, clinic, webhook_url=receiver.url, item9_missing_pages=True, historical_alert_days=14)
    assert shown["item9_missing_pages"] is True
    post(client, clinic, patient_id, missing_item9(), RECENT)
    assert len(deliveries(app, clinic)) == 1

    amend(client, clinic, patient_id, unasked, phq9(12, item9=2))  # answered when asked: an urgent alert
    amend(client, clinic, patient_id, unasked, missing_item9())  # unanswered again: the prompt is there already

    kinds = sorted((a["kind"], a["item_value"]) for a in alerts_of(client, clinic))
    assert kinds == [("item9_missing", None), ("item9_missing", None), ("item9_positive", 2)]
    assert len(deliveries(app, clinic)) == 2


def test_a_bad_paging_setting_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    for days in (0, 3651):
        response = client.put(
            "/v1/clinic/settings", json={"historical_alert_days": days}, headers=clinic.headers(Role.ADMIN)
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "historical_alert_days"
    read = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN)).json()
    assert (read["historical_alert_days"], read["item9_missing_pages"], read["synthetic"]) == (14, False, False)


def test_alerts_from_history_older_than_the_setting_are_historical_and_never_paged_by_rest_or_import(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url, historical_alert_days=14)
    patient_id = new_patient(client, clinic, external_id="MRN-H")
    post(client, clinic, patient_id, phq9(12, item9=2), OLD)
    post(client, clinic, patient_id, phq9(12, item9=1), RECENT)
    lines = [
        f"MRN-H,phq9,{(OLD - timedelta(days=7)).isoformat()},,1,1,1,1,1,1,1,1,3",
        f"MRN-H,phq9,{(NOW - timedelta(days=2)).isoformat()},,1,1,1,1,1,1,1,1,2",
    ]
    imported = client.post(
        "/v1/research/imports",
        content="\n".join([CSV_HEADER, *lines, ""]).encode(),
        headers={**clinic.headers(Role.INTEGRATION), "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text

    listed = alerts_of(client, clinic)
    assert sorted((a["item_value"], a["historical"]) for a in listed) == [(1, False), (2, False), (2, True), (3, True)]
    assert sorted(a["item_value"] for a in alerts_of(client, clinic, historical="true")) == [2, 3]
    assert len(deliveries(app, clinic)) == 2


def test_the_clinics_historical_alert_days_decides_what_is_history(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url, historical_alert_days=30)
    patient_id = new_patient(client, clinic)

    post(client, clinic, patient_id, phq9(12, item9=2), OLD)

    [alert] = alerts_of(client, clinic)
    assert alert["historical"] is False
    assert len(deliveries(app, clinic)) == 1


def test_alerts_from_fhir_history_are_historical_and_never_paged_by_post_or_bundle(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, receiver: Receiver
) -> None:
    set_webhook(client, clinic, receiver.url, historical_alert_days=14)
    patient_id = new_patient(client, clinic)
    register(client, clinic, SDC_QUESTIONNAIRE)
    published = about(fixture("qr-phq9-sdc.json"), patient_id)  # item 9 answered 1 (tests/fhir/test_responses.py)

    def authored(at: datetime) -> dict[str, Any]:
        return {**published, "authored": at.isoformat()}

    posted = send(client, "POST", "/fhir/QuestionnaireResponse", clinic, authored(OLD))
    entries = [
        {"resource": authored(at), "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        for at in (OLD, RECENT)
    ]
    bundle = send(client, "POST", "/fhir", clinic, {"resourceType": "Bundle", "type": "transaction", "entry": entries})

    assert posted.status_code == 201, posted.text
    assert bundle.status_code == 200, bundle.text
    listed = alerts_of(client, clinic)
    assert sorted((a["measurement"]["measured_at"], a["historical"], a["item_value"]) for a in listed) == [
        (OLD.isoformat().replace("+00:00", "Z"), True, 1),
        (OLD.isoformat().replace("+00:00", "Z"), True, 1),
        (RECENT.isoformat().replace("+00:00", "Z"), False, 1),
    ]
    assert len(deliveries(app, clinic)) == 1
