"""Clinic settings and clinic change parameters: admin only, validated, cited; defaults apply until replaced."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.clinical.conftest import PUBLIC_ADDRESS, FakeResolver
from tests.conftest import ClinicKeys

SCS_SF_JT = "/v1/clinic/change-parameters/scs_sf/total/jacobson_truax"


def test_the_shipped_defaults_are_listed_with_their_citations(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/clinic/change-parameters", headers=clinic.headers())

    assert response.status_code == 200
    listed = {(p["instrument"], p["score"], p["method"]): p for p in response.json()}
    assert set(listed) == {
        ("phq9", "total", "jacobson_truax"),
        ("phq9", "total", "fixed_threshold"),
        ("gad7", "total", "fixed_threshold"),
    }
    assert listed[("gad7", "total", "fixed_threshold")]["minimum_change"] == 4
    assert listed[("gad7", "total", "fixed_threshold")]["caseness_cutoff"] == 8
    assert all(p["citations"] for p in listed.values())


def test_an_admin_replaces_a_default_and_deleting_restores_it(client: TestClient, clinic: ClinicKeys) -> None:
    path = "/v1/clinic/change-parameters/phq9/total/fixed_threshold"
    body = {"minimum_change": 5, "cutoff_type": "caseness", "caseness_cutoff": 10, "citation": "CarePaths 2015"}

    put = client.put(path, json=body, headers=clinic.headers(Role.ADMIN))
    listed = {
        (p["instrument"], p["method"]): p
        for p in client.get("/v1/clinic/change-parameters", headers=clinic.headers()).json()
    }
    deleted = client.delete(path, headers=clinic.headers(Role.ADMIN))
    restored = {
        (p["instrument"], p["method"]): p
        for p in client.get("/v1/clinic/change-parameters", headers=clinic.headers()).json()
    }

    assert put.status_code == 200, put.text
    assert put.json()["source"] == "clinic"
    # Replaced as a whole: the default's response and remission do not carry over.
    assert put.json()["response_reduction"] is None
    assert listed[("phq9", "fixed_threshold")]["minimum_change"] == 5
    assert deleted.status_code == 204
    assert restored[("phq9", "fixed_threshold")]["minimum_change"] == 6
    assert client.delete(path, headers=clinic.headers(Role.ADMIN)).status_code == 404


def test_parameters_are_the_clinics_own(client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys) -> None:
    body = {"reliability": 0.9, "clinical_sd": 0.7, "citation": "Example"}
    assert client.put(SCS_SF_JT, json=body, headers=clinic.headers(Role.ADMIN)).status_code == 200

    theirs = client.get("/v1/clinic/change-parameters", headers=other_clinic.headers()).json()

    assert not [p for p in theirs if p["instrument"] == "scs_sf"]


def test_only_admins_set_parameters(client: TestClient, clinic: ClinicKeys) -> None:
    body = {"reliability": 0.9, "clinical_sd": 0.7, "citation": "Example"}

    response = client.put(SCS_SF_JT, json=body, headers=clinic.headers(Role.CLINICIAN))

    assert response.status_code == 403


def test_a_citation_is_required(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.put(SCS_SF_JT, json={"reliability": 0.9, "clinical_sd": 0.7}, headers=clinic.headers(Role.ADMIN))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "citation"


def test_invalid_combinations_name_every_field_and_store_nothing(client: TestClient, clinic: ClinicKeys) -> None:
    body = {
        "reliability": 0.9,
        "minimum_change": 3,
        "cutoff_type": "c",
        "clinical_mean": 2.5,
        "remission_below": 2,
        "caseness_cutoff": 3,
        "citation": "Example",
    }

    response = client.put(SCS_SF_JT, json=body, headers=clinic.headers(Role.ADMIN))

    assert response.status_code == 422
    fields = sorted(error["field"] for error in response.json()["errors"])
    # clinical_sd: needed by the method and by cut-off c; minimum_change: not a Jacobson–Truax parameter;
    # functional M/SD: needed by cut-off c; caseness_cutoff: needs cutoff_type caseness;
    # remission: SCS-SF total is higher-is-better, so remission is not defined for it.
    assert fields == [
        "caseness_cutoff",
        "clinical_sd",
        "clinical_sd",
        "functional_mean",
        "functional_sd",
        "minimum_change",
        "remission_below",
    ]
    listed = client.get("/v1/clinic/change-parameters", headers=clinic.headers()).json()
    assert not [p for p in listed if p["instrument"] == "scs_sf"]


def test_out_of_range_numbers_are_refused(client: TestClient, clinic: ClinicKeys) -> None:
    for body in (
        {"reliability": 1.0, "clinical_sd": 0.7, "citation": "x"},
        {"reliability": 0.9, "clinical_sd": 0, "citation": "x"},
        {"reliability": 0.9, "clinical_sd": 0.7, "cutoff_type": "caseness", "caseness_cutoff": 6, "citation": "x"},
    ):
        response = client.put(SCS_SF_JT, json=body, headers=clinic.headers(Role.ADMIN))
        assert response.status_code == 422, body


def test_clinic_settings_round_trip_for_admins_only(
    client: TestClient, clinic: ClinicKeys, resolver: FakeResolver
) -> None:
    resolver.answers["ehr.example"] = [PUBLIC_ADDRESS]
    body = {
        "crisis_text": "Call the on-call psychiatrist: 555-0100.",
        "webhook_url": "https://ehr.example/hooks/alerts",
    }

    put = client.put("/v1/clinic/settings", json=body, headers=clinic.headers(Role.ADMIN))
    got = client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN))
    clinician = client.get("/v1/clinic/settings", headers=clinic.headers(Role.CLINICIAN))
    bad_url = client.put("/v1/clinic/settings", json={"webhook_url": "ftp://x"}, headers=clinic.headers(Role.ADMIN))

    assert put.status_code == 200, put.text
    assert got.json()["crisis_text"] == body["crisis_text"]
    assert got.json()["webhook_url"] == body["webhook_url"]
    assert clinician.status_code == 403
    assert bad_url.status_code == 422
