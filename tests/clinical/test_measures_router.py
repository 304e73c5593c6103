"""GET /v1/clinic/measures/{measure_id} and GET /fhir/Measure/{id}/$evaluate-measure on hand-counted clinics.

Measurement period: the year 2026. The clock stands on 15 January 2027, after every window closed.

The 12-month clinic (CMS159: index period 1 Nov 2024 to 31 Oct 2025, window = index + 12 months ± 60 days):
- A: 20 on 31 Oct 2024, the day before the index period: not counted.
- B: 10 on 1 Nov 2024 (index, first day; window 2 Sep to 31 Dec 2025); 2 on 1 Sep 2025 (a day early), 4 on
  31 Dec 2025 (the window's last day): remission.
- C: 20 on 31 Oct 2025 (index, last day; window 1 Sep to 30 Dec 2026); 3 on 1 Sep 2026, then 5 on 30 Dec 2026 (the
  last in the window, and 5 is not < 5), 0 on 31 Dec 2026 (a day late): no remission.
- D: 18 on 1 Nov 2025 (2 months before the start: excluded): not counted.
- E: 9 on 10 Jan 2025 (not > 9), 12 on 10 Feb 2025 (index; window 12 Dec 2025 to 11 Apr 2026), nothing after: a care
  gap.
- F: 14 on 15 Mar 2025 (index; window 14 Jan to 14 May 2026); 4 on 15 Mar 2026, amended to 7; an unscored PHQ-9
  (three items missing) on 20 Mar 2026: the last total in the window is the amended 7, no remission.
Denominator 4 (B, C, E, F); remission 1 (B); care gaps: E.

The 6-month clinic (index period 6 May 2025 to 5 May 2026, window = index + 120 to 240 days):
- H: 16 on 5 May 2025, a day early: not counted.  K: 22 on 6 May 2026, a day late: not counted.
- I: 10 on 6 May 2025 (window 3 Sep 2025 to 1 Jan 2026); 1 on 2 Sep 2025 (day 119), 5 on 1 Jan 2026 (day 240):
  follow-up, no remission (5), response (5 is half of 10).
- J: 12 on 5 May 2026 (window 2 Sep to 31 Dec 2026); 2 on 2 Sep 2026 (day 120), 7 on 1 Oct 2026 (most recent):
  follow-up only.
- L: 9 on 1 Jul 2025, 20 on 1 Aug 2025 (window 29 Nov 2025 to 29 Mar 2026); 0 on 30 Mar 2026 (day 241): a care gap.
- M: 18 on 10 Oct 2025 (window 7 Feb to 7 Jun 2026); 4 on 1 Mar 2026: follow-up, remission, response.
Denominator 4; follow-up 3 (I, J, M); remission 1 (M); response 2 (I, M); care gaps: L.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.state import state_of
from app.scoring.engine import Answer
from tests.clinical.conftest import new_patient, phq9, seed
from tests.conftest import ClinicKeys

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
YEAR = {"period_start": "2026-01-01", "period_end": "2026-12-31"}
FHIR_YEAR = {"periodStart": "2026-01-01", "periodEnd": "2026-12-31"}
MEASURES_ROUTE = "/v1/clinic/measures/{measure_id}"
EVALUATE_ROUTE = "/fhir/Measure/{measure_id}/$evaluate-measure"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with CLOCK.frozen_at(NOW):
        yield


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00+00:00")


@dataclass
class Stocked:
    patients: dict[str, str]


def stock(app: FastAPI, client: TestClient, clinic: ClinicKeys, courses: dict[str, list[tuple[str, int]]]) -> Stocked:
    patients = {}
    for name, course in courses.items():
        patient = new_patient(client, clinic, external_id=f"mrn-{name}")
        patients[name] = patient
        for day, total in course:
            seed(app, clinic, patient, "phq9", phq9(total), at(day))
    return Stocked(patients)


@pytest.fixture
def twelve_months(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> Stocked:
    stocked = stock(
        app,
        client,
        clinic,
        {
            "A": [("2024-10-31", 20)],
            "B": [("2024-11-01", 10), ("2025-09-01", 2), ("2025-12-31", 4)],
            "C": [("2025-10-31", 20), ("2026-09-01", 3), ("2026-12-30", 5), ("2026-12-31", 0)],
            "D": [("2025-11-01", 18)],
            "E": [("2025-01-10", 9), ("2025-02-10", 12)],
            "F": [("2025-03-15", 14)],
        },
    )
    f = stocked.patients["F"]
    four = seed(app, clinic, f, "phq9", phq9(4), at("2026-03-15"))
    amended = client.post(
        f"/v1/patients/{f}/measurements/{four.measurement_id}/amend",
        json={"items": phq9(7), "reason": "transcription error"},
        headers=clinic.headers(),
    )
    assert amended.status_code in (200, 201), amended.text
    unscored: dict[str, Answer] = {str(n): None if n in (1, 2, 3) else 0 for n in range(1, 10)}
    assert seed(app, clinic, f, "phq9", unscored, at("2026-03-20")).scores["total"]["value"] is None
    return stocked


@pytest.fixture
def six_months(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> Stocked:
    return stock(
        app,
        client,
        clinic,
        {
            "H": [("2025-05-05", 16)],
            "I": [("2025-05-06", 10), ("2025-09-02", 1), ("2026-01-01", 5)],
            "J": [("2026-05-05", 12), ("2026-09-02", 2), ("2026-10-01", 7)],
            "K": [("2026-05-06", 22)],
            "L": [("2025-07-01", 9), ("2025-08-01", 20), ("2026-03-30", 0)],
            "M": [("2025-10-10", 18), ("2026-03-01", 4)],
        },
    )


def measure(client: TestClient, clinic: ClinicKeys, measure_id: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/v1/clinic/measures/{measure_id}", params=params or YEAR, headers=clinic.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def report(client: TestClient, clinic: ClinicKeys, measure_id: str, **params: str) -> dict[str, Any]:
    response = client.get(
        f"/fhir/Measure/{measure_id}/$evaluate-measure", params={**FHIR_YEAR, **params}, headers=clinic.headers()
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body: dict[str, Any] = response.json()
    MeasureReport.model_validate(body)
    return body


def counts(measure_report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        group["id"]: {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
        for group in measure_report["group"]
    }


def test_remission_at_12_months_counts_the_hand_counted_clinic(
    client: TestClient, clinic: ClinicKeys, twelve_months: Stocked
) -> None:
    body = measure(client, clinic, "depression-remission-12m")

    assert body["measurement_period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    assert body["index_period"] == {"start": "2024-11-01", "end": "2025-10-31"}
    assert (body["denominator"], body["numerators"], body["rates"]) == (4, {"remission": 1}, {"remission": 0.25})
    [gap] = body["care_gaps"]
    assert gap["patient"] == {"id": twelve_months.patients["E"], "external_id": "mrn-E", "identifiers": []}
    assert (gap["index_score"], gap["window_opens"], gap["window_closes"]) == (12, "2025-12-12", "2026-04-11")
    assert gap["status"] == "closed"
    assert any("encounter" in line.lower() for line in body["not_applied"])
    assert any("exclusions" in line.lower() for line in body["not_applied"])


def test_response_at_6_months_counts_the_hand_counted_clinic(
    client: TestClient, clinic: ClinicKeys, six_months: Stocked
) -> None:
    body = measure(client, clinic, "depression-response-6m")

    assert body["index_period"] == {"start": "2025-05-06", "end": "2026-05-05"}
    assert body["denominator"] == 4
    assert body["numerators"] == {"follow_up": 3, "remission": 1, "response": 2}
    assert body["rates"] == {"follow_up": 0.75, "remission": 0.25, "response": 0.5}
    [gap] = body["care_gaps"]
    assert gap["patient"]["external_id"] == "mrn-L"
    assert (gap["window_opens"], gap["window_closes"], gap["status"]) == ("2025-11-29", "2026-03-29", "closed")


def test_a_care_gap_is_open_while_its_window_is(client: TestClient, clinic: ClinicKeys, six_months: Stocked) -> None:
    CLOCK.move_to(datetime(2026, 1, 10, tzinfo=UTC))

    [gap] = measure(client, clinic, "depression-response-6m")["care_gaps"]

    assert (gap["patient"]["external_id"], gap["status"]) == ("mrn-L", "open")


def test_the_fhir_summary_agrees_with_the_api(client: TestClient, clinic: ClinicKeys, six_months: Stocked) -> None:
    body = measure(client, clinic, "depression-response-6m")
    summary = report(client, clinic, "depression-response-6m", reportType="population")

    assert (summary["type"], summary["status"]) == ("summary", "complete")
    assert summary["measure"] == "urn:compassion-outcomes:measure:depression-response-6m"
    assert summary["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    assert counts(summary) == {
        rate.replace("_", "-"): {"initial-population": 4, "denominator": 4, "numerator": body["numerators"][rate]}
        for rate in ("follow_up", "remission", "response")
    }
    scores = {group["id"]: group["measureScore"]["value"] for group in summary["group"]}
    assert scores == {"follow-up": 0.75, "remission": 0.25, "response": 0.5}
    assert "subject" not in summary
    assert "contained" not in summary


def test_the_fhir_summary_of_the_12_month_measure_agrees_with_the_api(
    client: TestClient, clinic: ClinicKeys, twelve_months: Stocked
) -> None:
    body = measure(client, clinic, "depression-remission-12m")
    summary = report(client, clinic, "depression-remission-12m")

    assert summary["type"] == "summary"
    assert counts(summary) == {"remission": {"initial-population": 4, "denominator": 4, "numerator": 1}}
    assert body["numerators"] == {"remission": 1}
    assert summary["group"][0]["measureScore"]["value"] == body["rates"]["remission"] == 0.25


def test_the_subject_list_names_each_populations_patients(
    client: TestClient, clinic: ClinicKeys, twelve_months: Stocked
) -> None:
    listed = report(client, clinic, "depression-remission-12m", reportType="subject-list")
    lists = {item["id"]: item for item in listed["contained"]}
    [group] = listed["group"]
    members = {
        population["code"]["coding"][0]["code"]: {
            entry["item"]["reference"]
            for entry in lists[population["subjectResults"]["reference"].removeprefix("#")].get("entry", [])
        }
        for population in group["population"]
    }
    p = twelve_months.patients

    assert listed["type"] == "subject-list"
    assert members["denominator"] == members["initial-population"] == {f"Patient/{p[n]}" for n in "BCEF"}
    assert members["numerator"] == {f"Patient/{p['B']}"}


def test_one_patients_individual_report(client: TestClient, clinic: ClinicKeys, twelve_months: Stocked) -> None:
    p = twelve_months.patients

    remitted = report(client, clinic, "depression-remission-12m", reportType="subject", subject=f"Patient/{p['B']}")
    not_counted = report(client, clinic, "depression-remission-12m", subject=p["A"])

    assert (remitted["type"], remitted["subject"]["reference"]) == ("individual", f"Patient/{p['B']}")
    assert counts(remitted) == {"remission": {"initial-population": 1, "denominator": 1, "numerator": 1}}
    assert counts(not_counted) == {"remission": {"initial-population": 0, "denominator": 0, "numerator": 0}}
    assert "measureScore" not in not_counted["group"][0]


def test_an_open_period_is_pending(client: TestClient, clinic: ClinicKeys, six_months: Stocked) -> None:
    CLOCK.move_to(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))

    assert report(client, clinic, "depression-response-6m")["status"] == "pending"


def test_the_measure_resource_says_what_it_counts_and_leaves_out(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/fhir/Measure/depression-response-6m", headers=clinic.headers())

    assert response.status_code == 200, response.text
    resource = response.json()
    Measure.model_validate(resource)
    assert response.headers["etag"] == f'W/"{resource["meta"]["versionId"]}"'
    assert [group["id"] for group in resource["group"]] == ["follow-up", "remission", "response"]
    assert "HEDIS" in resource["relatedArtifact"][0]["display"]
    assert "not applied" in resource["disclaimer"]
    assert resource["scoring"]["coding"][0]["code"] == "proportion"


def test_another_clinics_patients_are_not_counted(
    client: TestClient, other_clinic: ClinicKeys, twelve_months: Stocked
) -> None:
    body = measure(client, other_clinic, "depression-remission-12m")

    assert (body["denominator"], body["rates"], body["care_gaps"]) == (0, {"remission": None}, [])
    outside = client.get(
        "/fhir/Measure/depression-remission-12m/$evaluate-measure",
        params={**FHIR_YEAR, "subject": f"Patient/{twelve_months.patients['B']}"},
        headers=other_clinic.headers(),
    )
    assert outside.status_code == 404
    assert outside.json()["resourceType"] == "OperationOutcome"


def test_the_care_gaps_patients_are_audited(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, twelve_months: Stocked
) -> None:
    measure(client, clinic, "depression-remission-12m")
    report(client, clinic, "depression-remission-12m", reportType="subject-list")

    with state_of(app).read_sessions() as db:
        events = db.execute(
            select(AuditEvent.route, AuditEvent.patient_id).where(
                AuditEvent.clinic_id == clinic.id, AuditEvent.route.in_([MEASURES_ROUTE, EVALUATE_ROUTE])
            )
        ).all()
    p = twelve_months.patients
    named = {(route, str(patient)) for route, patient in events if patient is not None}
    assert named == {(MEASURES_ROUTE, p["E"])} | {(EVALUATE_ROUTE, p[n]) for n in "BCEF"}
    assert {route for route, patient in events if patient is None} == {MEASURES_ROUTE, EVALUATE_ROUTE}


def test_an_unknown_measure_is_a_404_naming_the_measures(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/clinic/measures/phq9-remission", params=YEAR, headers=clinic.headers())
    fhir = client.get("/fhir/Measure/phq9-remission/$evaluate-measure", params=FHIR_YEAR, headers=clinic.headers())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["allowed"] == ["depression-remission-12m", "depression-response-6m"]
    assert fhir.status_code == 404
    assert "depression-remission-12m" in fhir.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period_start": "2026-13-01", "period_end": "2026-12-31"}, "period_start"),
        ({"period_start": "2026-01-01", "period_end": "2025-12-31"}, "period_end"),
        ({"period_start": "1899-12-31", "period_end": "2026-12-31"}, "period_start"),
        ({"period_start": "2026-01-01"}, "period_end"),
    ],
)
def test_bad_periods_are_422_problems(
    client: TestClient, clinic: ClinicKeys, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/clinic/measures/depression-remission-12m", params=params, headers=clinic.headers())

    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"periodStart": "2026-02-30", "periodEnd": "2026-12-31"},
        {"periodStart": "26", "periodEnd": "2026-12-31"},
        {**FHIR_YEAR, "reportType": "everything"},
        {**FHIR_YEAR, "reportType": "subject"},
        {**FHIR_YEAR, "reportType": "population", "subject": "Patient/x"},
        {**FHIR_YEAR, "subject": "Patient/not-a-uuid"},
    ],
)
def test_bad_operation_parameters_are_400_outcomes(
    client: TestClient, clinic: ClinicKeys, params: dict[str, str]
) -> None:
    response = client.get(
        "/fhir/Measure/depression-remission-12m/$evaluate-measure", params=params, headers=clinic.headers()
    )

    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_year_as_a_fhir_date_is_the_whole_year(client: TestClient, clinic: ClinicKeys, six_months: Stocked) -> None:
    whole = report(client, clinic, "depression-response-6m", periodStart="2026", periodEnd="2026")

    assert whole["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    assert counts(whole)["response"]["numerator"] == 2


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.INTEGRATION])
def test_only_admins_and_clinicians_read_measures(client: TestClient, clinic: ClinicKeys, role: Role) -> None:
    rest = client.get("/v1/clinic/measures/depression-remission-12m", params=YEAR, headers=clinic.headers(role))
    fhir = client.get(
        "/fhir/Measure/depression-remission-12m/$evaluate-measure", params=FHIR_YEAR, headers=clinic.headers(role)
    )

    assert (rest.status_code, fhir.status_code) == (403, 403)
    assert client.get(
        "/v1/clinic/measures/depression-remission-12m", params=YEAR, headers=clinic.headers(Role.ADMIN)
    ).is_success


def test_days_are_the_clinics_local_dates(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    """Oslo is UTC+1 in winter: 31 Oct 2024 23:30 UTC is 1 Nov 00:30 there, the index period's first day; 31 Oct
    2025 23:30 UTC is 1 Nov 2025 in Oslo, 2 months before the period's start, which the index period leaves out."""
    settings = client.put("/v1/clinic/settings", json={"timezone": "Europe/Oslo"}, headers=clinic.headers(Role.ADMIN))
    assert settings.status_code == 200, settings.text
    first = new_patient(client, clinic, external_id="mrn-oslo-first")
    late = new_patient(client, clinic, external_id="mrn-oslo-late")
    seed(app, clinic, first, "phq9", phq9(12), datetime(2024, 10, 31, 23, 30, tzinfo=UTC))
    seed(app, clinic, late, "phq9", phq9(12), datetime(2025, 10, 31, 23, 30, tzinfo=UTC))

    body = measure(client, clinic, "depression-remission-12m", **YEAR)

    assert body["denominator"] == 1
    assert [gap["patient"]["external_id"] for gap in body["care_gaps"]] == ["mrn-oslo-first"]
    assert any("time zone" in line for line in body["not_applied"])
