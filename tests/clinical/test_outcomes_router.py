"""GET /v1/clinic/outcomes: counts and rates of each category over the clinic's patients."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.clinical.conftest import day, fcs_from_others, new_patient, phq9, seed
from tests.conftest import ClinicKeys


@pytest.fixture
def four_patients(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    """18 → 4 recovered; 18 → 11 improved; 12 → 14 unchanged; one patient measured once (not assessable)."""
    for course in ((18, 4), (18, 11), (12, 14), (15,)):
        patient = new_patient(client, clinic)
        for week, total in enumerate(course):
            seed(app, clinic, patient, "phq9", phq9(total), day(7 * week))


@pytest.mark.usefixtures("four_patients")
def test_outcomes_count_each_patients_first_against_latest(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/clinic/outcomes", params={"instrument": "phq9"}, headers=clinic.headers())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patients_measured"] == 4
    assert body["patients_assessed"] == 3
    assert body["counts"] == {"recovered": 1, "improved": 1, "unchanged": 1, "deteriorated": 0, "harmed": 0}
    assert body["rates"]["recovered"] == pytest.approx(1 / 3)
    assert body["rates"]["harmed"] == 0
    # 18, 18 and 12 are all cases at baseline; 1 of 3 recovered.
    assert body["cases_at_baseline"] == 3
    assert body["recovery_rate_of_cases"] == pytest.approx(1 / 3)
    # Response: 4 ≤ 9 yes, 11 > 9 no, 14 > 6 no. Remission: only 4 < 5.
    assert body["responses"] == 1
    assert body["remissions"] == 1
    assert body["parameters"]["source"] == "default"
    assert body["missing_parameters"] == []


@pytest.mark.usefixtures("four_patients")
def test_the_window_keeps_only_measurements_inside_it(client: TestClient, clinic: ClinicKeys) -> None:
    # From day 7 on, only the second measurement of each course remains: nobody has two.
    response = client.get(
        "/v1/clinic/outcomes",
        params={"instrument": "phq9", "from": day(7).isoformat()},
        headers=clinic.headers(),
    )

    body = response.json()
    assert body["patients_measured"] == 3
    assert body["patients_assessed"] == 0
    assert body["rates"] == {}


@pytest.mark.usefixtures("four_patients")
def test_another_clinics_patients_are_not_counted(client: TestClient, other_clinic: ClinicKeys) -> None:
    response = client.get("/v1/clinic/outcomes", params={"instrument": "phq9"}, headers=other_clinic.headers())

    assert response.json()["patients_measured"] == 0


def test_without_parameters_no_category_is_counted_and_the_missing_ones_are_named(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(30), day(0))
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(20), day(7))

    body = client.get("/v1/clinic/outcomes", params={"instrument": "fcs_from_others"}, headers=clinic.headers()).json()

    assert body["patients_assessed"] == 1
    assert body["counts"] == {}
    assert body["cases_at_baseline"] is None
    assert {m["name"] for m in body["missing_parameters"]} >= {"reliability", "clinical_sd", "cutoff_type"}


def test_the_fixed_threshold_without_a_cutoff_counts_no_recovered_or_harmed(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    put = client.put(
        "/v1/clinic/change-parameters/fcs_from_others/total/fixed_threshold",
        json={"minimum_change": 5, "citation": "Clinic audit 2025"},
        headers=clinic.headers(Role.ADMIN),
    )
    assert put.status_code == 200, put.text
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(30), day(0))
    seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(20), day(7))

    body = client.get(
        "/v1/clinic/outcomes",
        params={"instrument": "fcs_from_others", "method": "fixed_threshold"},
        headers=clinic.headers(),
    ).json()

    assert body["counts"] == {"improved": 1, "unchanged": 0, "deteriorated": 0}  # −10 ≥ 5 points
    assert body["cases_at_baseline"] is None


def test_integration_keys_may_not_read_clinic_outcomes(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get(
        "/v1/clinic/outcomes", params={"instrument": "phq9"}, headers=clinic.headers(Role.INTEGRATION)
    )

    assert response.status_code == 403
