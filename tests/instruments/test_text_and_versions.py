"""Licensed item text stays inside its clinic and never touches scoring; re-scoring makes amendments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical import recording
from app.core.db import transaction
from app.core.state import state_of
from app.measurements import service as measurements
from app.measurements.schemas import Source
from tests.conftest import ISSUE_PHQ9, ClinicKeys, with_earlier_phq9

NORWEGIAN: dict[str, Any] = {
    "licence_note": "Norwegian translation, phqscreeners.com (no permission required)",
    "instructions": "Hvor ofte har du vært plaget av noen av følgende problemer de siste 2 ukene?",
    "items": {"1": "Lite interesse for eller glede av å gjøre ting"},
    "option_labels": {"default": {"0": "Ikke i det hele tatt"}},
}


def test_an_admin_loads_wording_that_only_their_clinic_sees(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    loaded = client.put("/v1/instruments/phq9/text", json=NORWEGIAN, headers=clinic.headers(Role.ADMIN))

    assert loaded.status_code == 200, loaded.text
    ours = client.get("/v1/instruments/phq9", headers=clinic.headers()).json()
    theirs = client.get("/v1/instruments/phq9", headers=other_clinic.headers()).json()
    assert ours["instructions"] == NORWEGIAN["instructions"]
    assert (ours["items"][0]["text"], ours["items"][0]["text_source"]) == (NORWEGIAN["items"]["1"], "clinic")
    assert (ours["items"][1]["text"], ours["items"][1]["text_source"]) == (
        "Feeling down, depressed, or hopeless",
        "definition",
    )
    assert ours["option_sets"]["default"][0]["label"] == "Ikke i det hele tatt"
    assert ours["clinic_text"]["licence_note"] == NORWEGIAN["licence_note"]
    assert theirs["items"][0]["text"] == "Little interest or pleasure in doing things"
    assert theirs["clinic_text"] is None
    assert client.get("/v1/instruments/phq9/text", headers=other_clinic.headers()).status_code == 404


def test_wording_never_changes_a_score(client: TestClient, clinic: ClinicKeys) -> None:
    before = client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9}, headers=clinic.headers()).json()
    client.put("/v1/instruments/phq9/text", json=NORWEGIAN, headers=clinic.headers(Role.ADMIN))

    after = client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9}, headers=clinic.headers()).json()

    assert after == before


def test_only_admins_load_wording(client: TestClient, clinic: ClinicKeys) -> None:
    for role in (Role.CLINICIAN, Role.INTEGRATION, Role.RESEARCHER):
        assert client.put("/v1/instruments/phq9/text", json=NORWEGIAN, headers=clinic.headers(role)).status_code == 403


def test_wording_for_items_or_options_the_instrument_lacks_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    body = {
        "licence_note": "x",
        "items": {"1": "a", "12": "b"},
        "option_labels": {"default": {"7": "c"}, "colours": {"0": "d"}},
    }

    response = client.put("/v1/instruments/phq9/text", json=body, headers=clinic.headers(Role.ADMIN))

    assert response.status_code == 422
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["items.12", "option_labels.colours", "option_labels.default.7"]
    assert client.get("/v1/instruments/phq9/text", headers=clinic.headers()).status_code == 404


def test_wording_can_be_replaced_and_removed(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)
    client.put("/v1/instruments/phq9/text", json=NORWEGIAN, headers=admin)
    client.put("/v1/instruments/phq9/text", json={**NORWEGIAN, "items": {"2": "Nedfor"}}, headers=admin)

    replaced = client.get("/v1/instruments/phq9/text", headers=clinic.headers()).json()
    assert replaced["items"] == {"2": "Nedfor"}
    assert client.delete("/v1/instruments/phq9/text", headers=admin).status_code == 204
    assert client.get("/v1/instruments/phq9", headers=clinic.headers()).json()["clinic_text"] is None
    assert client.delete("/v1/instruments/phq9/text", headers=admin).status_code == 404


def store_under_old_version(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> str:
    """A measurement scored under an earlier PHQ-9 definition (version 0.9.0), as if stored before an upgrade."""
    old_registry = with_earlier_phq9(app)
    for db in transaction(state_of(app).write_sessions):
        new = measurements.new_measurement(
            old_registry,
            "phq9",
            clinic_id=clinic.id,
            patient_id=uuid.UUID(patient_id),
            items=ISSUE_PHQ9,
            measured_at=datetime(2026, 1, 5, 10, tzinfo=UTC),
            source=Source.API,
        )
        measurement_id = str(recording.record_one(db, new)["measurement_id"])
    return measurement_id


def test_rescoring_amends_measurements_stored_under_an_older_definition(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    measurement_id = store_under_old_version(app, clinic, patient_id)
    client.post(
        f"/v1/patients/{patient_id}/measurements",
        json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-02-01T10:00:00Z"},
        headers=clinic.headers(),
    )

    outsider = client.post("/v1/instruments/phq9/rescore", headers=other_clinic.headers(Role.ADMIN)).json()
    first = client.post("/v1/instruments/phq9/rescore", headers=clinic.headers(Role.ADMIN)).json()
    second = client.post("/v1/instruments/phq9/rescore", headers=clinic.headers(Role.ADMIN)).json()

    assert (outsider["rescored"], outsider["already_current"]) == (0, 0)
    assert (first["rescored"], first["already_current"], first["version"]) == (1, 1, "1.0.0")
    assert (second["rescored"], second["already_current"]) == (0, 2)
    history = client.get(
        f"/v1/patients/{patient_id}/measurements/{measurement_id}/history", headers=clinic.headers()
    ).json()
    assert [(v["version"], v["instrument_version"], v["current"]) for v in history] == [
        (1, "0.9.0", False),
        (2, "1.0.0", True),
    ]
    assert history[1]["amendment_reason"].startswith("re-scored under phq9 definition 1.0.0")
    assert history[1]["items"] == history[0]["items"]


def test_only_admins_rescore(client: TestClient, clinic: ClinicKeys) -> None:
    assert client.post("/v1/instruments/phq9/rescore", headers=clinic.headers()).status_code == 403


def test_instruments_whose_text_may_not_be_shipped_carry_none_until_a_clinic_loads_its_own(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    bare = client.get("/v1/instruments/fcs_from_others", headers=clinic.headers()).json()
    assert {item["text"] for item in bare["items"]} == {None}
    assert bare["licence"]["text_shippable"] is False

    loaded = client.put(
        "/v1/instruments/fcs_from_others/text",
        json={"licence_note": "Clinic's licensed copy", "items": {str(n): f"wording {n}" for n in range(1, 14)}},
        headers=clinic.headers(Role.ADMIN),
    )

    assert loaded.status_code == 200
    ours = client.get("/v1/instruments/fcs_from_others", headers=clinic.headers()).json()
    theirs = client.get("/v1/instruments/fcs_from_others", headers=other_clinic.headers()).json()
    assert [item["text"] for item in ours["items"]] == [f"wording {n}" for n in range(1, 14)]
    assert {item["text"] for item in theirs["items"]} == {None}


def test_every_decided_instrument_is_listed(client: TestClient, clinic: ClinicKeys) -> None:
    listing = client.get("/v1/instruments", headers=clinic.headers()).json()

    assert {(i["id"], i["item_count"]) for i in listing} == {
        ("phq9", 10),
        ("gad7", 7),
        ("scs", 26),
        ("scs_sf", 12),
        ("fcs_for_others", 10),
        ("fcs_from_others", 13),
        ("fcs_for_self", 15),
        ("fscrs", 22),
        ("bdi2", 21),
    }
    assert {i["id"]: i["text_shippable"] for i in listing}["fscrs"] is False
