"""Response and remission only for patients who were cases at baseline (PHQ-9 10 or more), otherwise null with the
reason; the shipped default parameters carry their evidence, in the API and in the report (issue 21)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical.change import NO_CASENESS_CUTOFF, NOT_A_CASE, CutoffType, Method, Parameters, assess
from app.clinical.defaults import DEFAULTS
from tests.clinical.conftest import day, gad7, new_patient, phq9, seed
from tests.clinical.test_change_router import change
from tests.conftest import ClinicKeys

LOWER = "lower_is_better"


def test_a_phq9_baseline_of_10_is_a_case_and_9_is_not(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    other_patient_id = new_patient(client, clinic)
    seed(app, clinic, patient_id, "phq9", phq9(10), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(4), day(28))
    seed(app, clinic, other_patient_id, "phq9", phq9(9), day(0))
    seed(app, clinic, other_patient_id, "phq9", phq9(2), day(28))

    case = change(client, clinic, patient_id, instrument="phq9")
    not_case = change(client, clinic, other_patient_id, instrument="phq9")

    # 10 → 4: a case at baseline; 4 ≤ 10 × 0.5 is a response, 4 < 5 a remission.
    assert (case["caseness_baseline"], case["response"], case["remission"]) == (True, True, True)
    assert (case["response_reason"], case["remission_reason"]) == (None, None)
    # 9 → 2: the same relative change, but 9 is below the caseness cut-off: neither is defined.
    assert (not_case["caseness_baseline"], not_case["response"], not_case["remission"]) == (False, None, None)
    assert not_case["response_reason"] == not_case["remission_reason"] == NOT_A_CASE


def test_gad7_has_a_caseness_cut_off_but_no_response_or_remission_rule_in_the_references(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "gad7", gad7(15), day(0))
    seed(app, clinic, patient_id, "gad7", gad7(3), day(28))

    body = change(client, clinic, patient_id, instrument="gad7", method="fixed_threshold")

    assert body["caseness_baseline"] is True
    assert (body["response"], body["remission"]) == (None, None)
    assert body["response_reason"] == "parameter response_reduction is missing"
    assert body["remission_reason"] == "parameter remission_below is missing"


def test_a_computed_cut_off_is_not_caseness_so_response_and_remission_stay_null() -> None:
    parameters = Parameters(
        method=Method.JACOBSON_TRUAX,
        source="clinic",
        reliability=0.9,
        clinical_mean=20,
        clinical_sd=5,
        cutoff_type=CutoffType.A,
        response_reduction=0.5,
        remission_below=5,
    )

    result = assess(20, 2, direction=LOWER, method=Method.JACOBSON_TRUAX, parameters=parameters)

    assert result.caseness_baseline is True  # clinical by cut-off a (20 − 2·5 = 10), not by a caseness cut-off
    assert (result.response, result.remission) == (None, None)
    assert result.response_reason == result.remission_reason == NO_CASENESS_CUTOFF


def test_higher_is_better_scores_have_no_response_or_remission() -> None:
    result = assess(2.0, 4.0, direction="higher_is_better", method=Method.JACOBSON_TRUAX, parameters=None)

    assert (result.response, result.remission) == (None, None)
    assert result.response_reason == "defined only for scores where lower is better"


def test_clinic_outcomes_count_responses_and_remissions_among_the_cases_only(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    other_patient_id = new_patient(client, clinic)
    seed(app, clinic, patient_id, "phq9", phq9(10), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(4), day(28))
    seed(app, clinic, other_patient_id, "phq9", phq9(9), day(0))
    seed(app, clinic, other_patient_id, "phq9", phq9(2), day(28))

    response = client.get("/v1/clinic/outcomes", params={"instrument": "phq9"}, headers=clinic.headers())

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["patients_assessed"], body["cases_at_baseline"]) == (2, 1)
    assert (body["responses"], body["remissions"]) == (1, 1)
    assert body["synthetic"] is False


def evidence_of(parameters: dict[str, Any]) -> dict[str, tuple[int, bool, str | None]]:
    return {
        name: (item["sources"], item["confirmed"], item["reliability_kind"])
        for name, item in parameters["evidence"].items()
    }


def test_the_default_parameters_carry_their_evidence_in_the_api(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/clinic/change-parameters", headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text
    listed = {(p["instrument"], p["method"]): p for p in response.json()}

    # From instruments-sources.md §4.2/§4.7, change-analytics.md §3.2 and clinical-feedback.md, counted by hand.
    assert evidence_of(listed[("phq9", "jacobson_truax")]) == {
        "reliability": (1, False, "internal_consistency"),
        "clinical_mean": (1, False, None),
        "clinical_sd": (1, False, None),
        "caseness_cutoff": (3, True, None),
        "response_reduction": (2, True, None),
        "remission_below": (3, True, None),
    }
    assert evidence_of(listed[("phq9", "fixed_threshold")])["minimum_change"] == (1, False, None)
    assert evidence_of(listed[("gad7", "fixed_threshold")]) == {
        "minimum_change": (1, False, None),
        "caseness_cutoff": (1, False, None),
    }
    assert "test-retest" in listed[("phq9", "jacobson_truax")]["evidence"]["reliability"]["note"]


def test_every_shipped_value_has_evidence_and_a_citation() -> None:
    for key, parameters in DEFAULTS.items():
        given = {
            name
            for name in ("reliability", "clinical_mean", "clinical_sd", "caseness_cutoff", "minimum_change")
            + ("response_reduction", "remission_below")
            if getattr(parameters, name) is not None
        }
        assert set(parameters.evidence) == given, key
        assert given <= set(parameters.citations), key


def test_a_clinics_own_parameters_carry_no_evidence_but_their_citation(client: TestClient, clinic: ClinicKeys) -> None:
    body = {"reliability": 0.8, "clinical_sd": 5.0, "citation": "Our own test-retest study, 2025."}
    put = client.put(
        "/v1/clinic/change-parameters/phq9/total/jacobson_truax", json=body, headers=clinic.headers(Role.ADMIN)
    )
    assert put.status_code == 200, put.text

    assert put.json()["evidence"] == {}


def test_the_report_shows_the_evidence_of_the_parameters_used(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(9), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(2), day(28))

    html = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text

    assert "reliability: internal consistency (Cronbach&#39;s α), 1 source" in html
    assert NOT_A_CASE in html
