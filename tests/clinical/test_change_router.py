"""GET /v1/patients/{id}/change: the issue's worked examples through the API, missing parameters, version families."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.auth.permissions import Role
from app.core.state import state_of
from app.measurements.models import Measurement
from tests.clinical.conftest import day, fcs_from_others, gad7, phq9, scs_sf, seed
from tests.conftest import ClinicKeys


def change(client: TestClient, clinic: ClinicKeys, patient_id: str, **query: str) -> dict[str, Any]:
    response = client.get(f"/v1/patients/{patient_id}/change", params=query, headers=clinic.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_phq9_18_to_11_via_the_api_is_improved_with_the_default_parameters_and_their_citations(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    first = seed(app, clinic, patient_id, "phq9", phq9(18), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(14), day(7))
    last = seed(app, clinic, patient_id, "phq9", phq9(11), day(14))

    body = change(client, clinic, patient_id, instrument="phq9")

    assert body["method"] == "jacobson_truax"
    assert body["score"] == "total"
    assert body["version_family"] == "1"
    assert body["baseline"] == {
        "measurement_id": str(first.measurement_id),
        "measured_at": "2026-01-05T09:00:00Z",
        "instrument_version": "1.0.0",
        "value": 18,
        "band": "moderately_severe",
        "prorated": False,
    }
    assert body["latest"]["measurement_id"] == str(last.measurement_id)
    assert body["difference"] == -7
    assert round(body["rci"], 2) == -2.71  # −7 / 2.5797
    assert round(body["reliable_change_threshold"], 2) == 5.06
    assert body["caseness_baseline"] is True
    assert body["caseness_latest"] is True
    assert body["category"] == "improved"
    assert body["response"] is False
    assert body["remission"] is False
    assert body["missing_parameters"] == []
    parameters = body["parameters"]
    assert isinstance(parameters, dict)
    assert parameters["source"] == "default"
    assert parameters["direction"] == "lower_is_better"
    assert (parameters["reliability"], parameters["clinical_mean"], parameters["clinical_sd"]) == (0.89, 15.4, 5.5)
    assert (parameters["cutoff_type"], parameters["cutoff"]) == ("caseness", 10)
    assert parameters["rci_cutoff"] == 1.96
    assert round(parameters["standard_error_of_difference"], 2) == 2.58
    assert "Kroenke" in parameters["citations"]["reliability"]
    assert "Talking Therapies" in parameters["citations"]["clinical_sd"]
    assert "Jacobson" in parameters["citations"]["method"]
    assert "psychiatryonline" in parameters["citations"]["remission_below"]


def test_phq9_18_to_4_is_recovered(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(18), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(4), day(28))

    body = change(client, clinic, patient_id, instrument="phq9")

    assert body["difference"] == -14
    assert body["category"] == "recovered"
    assert body["caseness_latest"] is False
    assert body["response"] is True
    assert body["remission"] is True


def test_the_fixed_threshold_method_uses_6_points_for_the_phq9(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(18), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(12), day(7))

    body = change(client, clinic, patient_id, instrument="phq9", method="fixed_threshold")

    assert body["method"] == "fixed_threshold"
    assert body["rci"] is None
    assert body["reliable_change_threshold"] == 6
    assert body["category"] == "improved"  # −6 ≥ 6 points, and 12 is still a case
    assert body["parameters"]["minimum_change"] == 6


def test_two_chosen_measurements_are_compared(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(20), day(0))
    middle = seed(app, clinic, patient_id, "phq9", phq9(16), day(7))
    chosen = seed(app, clinic, patient_id, "phq9", phq9(8), day(14))
    seed(app, clinic, patient_id, "phq9", phq9(12), day(21))

    body = change(
        client,
        clinic,
        patient_id,
        instrument="phq9",
        **{"from": str(middle.measurement_id), "to": str(chosen.measurement_id)},
    )

    assert (body["baseline"]["value"], body["latest"]["value"]) == (16, 8)
    assert body["category"] == "recovered"  # −8 (RCI −3.10), 16 a case, 8 not


def test_from_must_be_measured_before_to(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    early = seed(app, clinic, patient_id, "phq9", phq9(20), day(0))
    late = seed(app, clinic, patient_id, "phq9", phq9(10), day(7))

    response = client.get(
        f"/v1/patients/{patient_id}/change",
        params={"instrument": "phq9", "from": str(late.measurement_id), "to": str(early.measurement_id)},
        headers=clinic.headers(),
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "from"


def test_another_patients_measurement_cannot_be_chosen(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(20), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(10), day(7))
    other_patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
    foreign = seed(app, clinic, other_patient, "phq9", phq9(20), day(0))

    response = client.get(
        f"/v1/patients/{patient_id}/change",
        params={"instrument": "phq9", "from": str(foreign.measurement_id)},
        headers=clinic.headers(),
    )

    assert response.status_code == 404


def test_instruments_without_shipped_parameters_say_which_are_missing_and_invent_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(30), day(0))
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(18), day(21))

    body = change(client, clinic, patient_id, instrument="fcs_from_others")

    assert body["difference"] == -12
    assert body["rci"] is None
    assert body["reliable_change_threshold"] is None
    assert body["category"] is None
    assert body["caseness_baseline"] is None
    assert body["parameters"] is None
    missing = {item["name"]: item["needed_for"] for item in body["missing_parameters"]}
    assert missing["reliability"] == ["rci", "reliable_change_threshold", "category"]
    assert missing["clinical_sd"] == ["rci", "reliable_change_threshold", "category"]
    assert missing["cutoff_type"] == [
        "caseness_baseline",
        "caseness_latest",
        "recovered",
        "harmed",
        "response",
        "remission",
    ]


def test_gad7_has_only_the_fixed_threshold_default(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "gad7", gad7(12), day(0))
    seed(app, clinic, patient_id, "gad7", gad7(7), day(14))

    jacobson_truax = change(client, clinic, patient_id, instrument="gad7")
    fixed = change(client, clinic, patient_id, instrument="gad7", method="fixed_threshold")

    assert jacobson_truax["category"] is None
    assert [m["name"] for m in jacobson_truax["missing_parameters"]][:2] == ["reliability", "clinical_sd"]
    # −5 ≥ 4 points; 12 ≥ 8 a case, 7 < 8 not.
    assert fixed["category"] == "recovered"
    assert fixed["parameters"]["caseness_cutoff"] == 8


def test_a_clinic_admin_sets_parameters_with_a_citation_and_the_change_uses_them(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "scs_sf", scs_sf(positive=2, negative=4), day(0))  # (2 + 6 − 4)/2 = 2.0
    seed(app, clinic, patient_id, "scs_sf", scs_sf(positive=4, negative=2), day(42))  # (4 + 6 − 2)/2 = 4.0
    citation = "Example clinic intake sample 2025 (n = 212), Cronbach's alpha."
    body = {"reliability": 0.84, "clinical_mean": 2.6, "clinical_sd": 0.6, "cutoff_type": "a", "citation": citation}

    put = client.put(
        "/v1/clinic/change-parameters/scs_sf/total/jacobson_truax", json=body, headers=clinic.headers(Role.ADMIN)
    )
    assert put.status_code == 200, put.text

    result = change(client, clinic, patient_id, instrument="scs_sf")
    # S_diff = 0.6·√0.16·√2 = 0.6 × 0.4 × 1.41421 = 0.339411; RCI = 2.0 / 0.339411 = 5.89 (higher is better).
    assert round(result["rci"], 2) == 5.89
    # Cut-off a = 2.6 + 2·0.6 = 3.8: 2.0 is clinical, 4.0 is functional → recovered.
    assert result["parameters"]["cutoff"] == 3.8
    assert result["category"] == "recovered"
    assert result["parameters"]["source"] == "clinic"
    assert result["parameters"]["citations"]["reliability"] == citation
    # Response and remission are not defined for a higher-is-better score, so nothing is missing.
    assert result["missing_parameters"] == []
    assert result["response"] is None


def test_only_the_latest_version_family_is_compared(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    old = seed(app, clinic, patient_id, "phq9", phq9(24), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(16), day(7))
    latest = seed(app, clinic, patient_id, "phq9", phq9(9), day(14))
    with state_of(app).write_sessions() as db, db.begin():
        db.execute(update(Measurement).where(Measurement.id == old.id).values(definition_version="0.9.0"))

    body = change(client, clinic, patient_id, instrument="phq9")
    trajectory = client.get(
        f"/v1/patients/{patient_id}/trajectory", params={"instrument": "phq9"}, headers=clinic.headers()
    ).json()

    assert body["baseline"]["value"] == 16  # 24 was scored under definition 0.x
    assert trajectory["points_in_other_version_families"] == 1
    assert [point["value"] for point in trajectory["points"]] == [16, 9]
    mixed = client.get(
        f"/v1/patients/{patient_id}/change",
        params={"instrument": "phq9", "from": str(old.measurement_id), "to": str(latest.measurement_id)},
        headers=clinic.headers(),
    )
    assert mixed.status_code == 422
    assert "different major versions" in mixed.json()["detail"]


def test_one_measurement_is_not_a_change(app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12), day(0))

    response = client.get(f"/v1/patients/{patient_id}/change", params={"instrument": "phq9"}, headers=clinic.headers())

    assert response.status_code == 422
    assert "found 1" in response.json()["detail"]


def test_unknown_instrument_and_score_name_the_allowed_values(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    unknown = client.get(f"/v1/patients/{patient_id}/change", params={"instrument": "phq8"}, headers=clinic.headers())
    no_score = client.get(f"/v1/patients/{patient_id}/change", params={"instrument": "fscrs"}, headers=clinic.headers())

    assert unknown.status_code == 422
    assert "phq9" in unknown.json()["errors"][0]["allowed"]
    assert no_score.status_code == 422
    assert no_score.json()["errors"][0]["field"] == "score"
    assert "self_criticism" in no_score.json()["errors"][0]["allowed"]


def test_another_clinics_patient_is_not_found(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(18), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(4), day(7))

    for path in ("change", "trajectory", "report", "chart.svg"):
        response = client.get(
            f"/v1/patients/{patient_id}/{path}", params={"instrument": "phq9"}, headers=other_clinic.headers()
        )
        assert response.status_code == 404, path
    missing = client.get(f"/v1/patients/{uuid.uuid4()}/change", params={"instrument": "phq9"}, headers=clinic.headers())
    assert missing.status_code == 404


def test_researchers_may_not_read_patient_change(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    response = client.get(
        f"/v1/patients/{patient_id}/change", params={"instrument": "phq9"}, headers=clinic.headers(Role.RESEARCHER)
    )

    assert response.status_code == 403
