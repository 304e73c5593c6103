"""POST /v1/research/lagged-effects on a clinic's stored measurements."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.research.generator import CohortConfig
from tests.conftest import ClinicKeys
from tests.research.conftest import new_project, store_cohort

PATH = "/v1/research/lagged-effects"
QUESTION = {"outcome": "phq9.total", "predictors": ["fcs_from_others.total", "scs_sf.total"], "lag": 1}


@pytest.fixture
def stored_cohort(app: FastAPI, clinic: ClinicKeys) -> int:
    """20 patients × 12 weeks of PHQ-9, FCS (from others) and SCS-SF, with config A's effects."""
    return store_cohort(app, clinic, CohortConfig(patients=20, weeks=12), seed=5)


def ask(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post(PATH, json=body, headers=headers)


def test_the_issue_question_is_answered_from_the_clinics_data(
    client: TestClient, stored_cohort: int, researcher: dict[str, str]
) -> None:
    response = ask(client, researcher, QUESTION)

    assert response.status_code == 200, response.text
    body = response.json()
    assert stored_cohort == 20 * 12 * 3
    # Each patient's weeks 1…11 have the outcome and a week-earlier value of all three variables.
    assert (body["n_patients"], body["n_observations"], body["dropped_patients"]) == (20, 220, 0)
    assert body["median_rows_per_patient"] == 11
    effects = {e["predictor"]: e for e in body["effects"]}
    assert list(effects) == ["fcs_from_others.total (t−1)", "scs_sf.total (t−1)", "phq9.total (t−1)"]
    mechanism = effects["fcs_from_others.total (t−1)"]
    assert mechanism["outcome"] == "phq9.total"
    assert mechanism["role"] == "within"
    assert mechanism["estimate"] > 0  # generated with γ_FD = +0.30
    assert mechanism["ci_low"] < mechanism["estimate"] < mechanism["ci_high"]
    assert set(mechanism) >= {"predictor", "outcome", "estimate", "se", "ci_low", "ci_high", "p", "standardized"}
    assert effects["phq9.total (t−1)"]["interpretable"] is False
    assert body["specification"]["lag"] == 1
    assert body["specification"]["time_unit"] == "week"
    assert body["specification"]["variables"] == {
        "y": "phq9.total",
        "x1": "fcs_from_others.total",
        "x2": "scs_sf.total",
    }
    assert {w["code"] for w in body["warnings"]} >= {"small_sample"}
    assert len(body["naive"]["pooled_lagged"]) == 2
    assert len(body["naive"]["pooled_lagged_with_outcome_lag"]) == 3
    assert body["naive"]["note"].startswith("Naive estimates, for contrast only")
    assert [b["role"] for b in body["between_effects"]] == ["between", "between"]


def test_another_clinic_does_not_see_this_clinics_data(
    client: TestClient, stored_cohort: int, other_clinic: ClinicKeys
) -> None:
    response = ask(client, new_project(client, other_clinic).headers, QUESTION)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("not enough data for the analysis: 0 patient(s)")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**QUESTION, "outcome": "phq10.total"}, "outcome"),
        ({**QUESTION, "predictors": ["fcs_from_others.total", "scs_sf.mean"]}, "predictors.1"),
    ],
)
def test_unknown_variables_name_the_allowed_ones(
    client: TestClient, researcher: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = ask(client, researcher, body)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["allowed"]


@pytest.mark.parametrize(
    "body",
    [
        {**QUESTION, "predictors": ["phq9.total"]},
        {**QUESTION, "predictors": ["scs_sf.total", "scs_sf.total"]},
        {**QUESTION, "time_unit": "session"},
        {**QUESTION, "lag": 0},
        {**QUESTION, "predictors": []},
        {**QUESTION, "outcome": "phq9"},
    ],
)
def test_ill_formed_questions_are_refused(client: TestClient, researcher: dict[str, str], body: dict[str, Any]) -> None:
    assert ask(client, researcher, body).status_code == 422


def test_the_within_method_gives_the_same_within_effects(
    client: TestClient, stored_cohort: int, researcher: dict[str, str]
) -> None:
    mixed = ask(client, researcher, QUESTION).json()
    within = ask(client, researcher, {**QUESTION, "method": "within"}).json()

    for a, b in zip(mixed["effects"], within["effects"], strict=True):
        assert a["estimate"] == pytest.approx(b["estimate"], abs=1e-6)
    assert within["between_effects"] == []


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.INTEGRATION])
def test_roles_without_research_analyse_are_refused(client: TestClient, clinic: ClinicKeys, role: Role) -> None:
    assert ask(client, clinic.headers(role), QUESTION).status_code == 403
