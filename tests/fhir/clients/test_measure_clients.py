"""The depression quality measures through the FHIR clients of the suite, against the real server: fhirpy reads the
Measure and runs ``$evaluate-measure``; fhirclient (strict R4 models) parses the Measure and every kind of report.

The patient is course B of ``tests/clinical/test_measures_router.py``: a PHQ-9 of 10 on 2024-11-01 (the index event,
inside the 2026 measurement period's index period) and 4 on 2025-12-31, inside its remission window: counted in
the initial population, the denominator and the numerator of CMS159 for 2026.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fhirclient.models.measure import Measure as StrictMeasure
from fhirclient.models.measurereport import MeasureReport as StrictMeasureReport
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient

from tests.fhir.clients.conftest import Live

REMISSION = "depression-remission-12m"
YEAR = {"periodStart": "2026-01-01", "periodEnd": "2026-12-31"}
LOINC_ANSWERS = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}


def phq9_with_total(patient_id: str, authored: str, items: list[int]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "urn:compassion-outcomes:questionnaire:phq9",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": authored,
        "item": [
            {"linkId": str(n), "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LOINC_ANSWERS[v]}}]}
            for n, v in enumerate(items, start=1)
        ],
    }


@pytest.fixture(scope="module")
def remitted_patient(live: Live) -> str:
    """A patient of course B, stored through fhirpy."""
    fhir = SyncFHIRClient(live.base, authorization=f"Bearer {live.key}")
    patient = fhir.resource("Patient", identifier=[{"system": "urn:test:measures", "value": str(uuid.uuid4())}])
    patient.save()
    course = [
        ("2024-11-01T09:00:00Z", [3, 3, 3, 1, 0, 0, 0, 0, 0]),  # 10: the index event
        ("2025-09-01T09:00:00Z", [2, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("2025-12-31T09:00:00Z", [3, 1, 0, 0, 0, 0, 0, 0, 0]),  # 4: remission, the window's last reading
    ]
    for authored, items in course:
        fhir.resource("QuestionnaireResponse", **phq9_with_total(str(patient.id), authored, items)).save()
    return str(patient.id)


def counts(report: dict[str, Any]) -> dict[str, int]:
    [group] = report["group"]
    return {population["code"]["coding"][0]["code"]: population["count"] for population in group["population"]}


def test_fhirpy_reads_the_measure_and_evaluates_one_patients_report(live: Live, remitted_patient: str) -> None:
    fhir = SyncFHIRClient(live.base, authorization=f"Bearer {live.key}")

    measure = fhir.reference("Measure", REMISSION).to_resource()
    report = fhir.execute(
        f"Measure/{REMISSION}/$evaluate-measure",
        method="get",
        params={**YEAR, "reportType": "subject", "subject": f"Patient/{remitted_patient}"},
    )

    assert measure.resourceType == "Measure"
    assert measure.id == REMISSION
    assert report["resourceType"] == "MeasureReport"
    assert report["measure"] == measure.url
    assert (report["type"], report["subject"]["reference"]) == ("individual", f"Patient/{remitted_patient}")
    assert report["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    assert counts(report) == {"initial-population": 1, "denominator": 1, "numerator": 1}


@pytest.mark.parametrize("report_type", ["population", "subject-list", "subject"])
def test_every_report_parses_as_a_strict_r4_measure_report(live: Live, remitted_patient: str, report_type: str) -> None:
    server = FHIRServer(None, base_uri=live.base)
    server.session.headers["Authorization"] = f"Bearer {live.key}"
    subject = {"subject": f"Patient/{remitted_patient}"} if report_type == "subject" else {}
    query = "&".join(f"{name}={value}" for name, value in {**YEAR, "reportType": report_type, **subject}.items())

    measure = StrictMeasure.read(REMISSION, server)
    raw: dict[str, Any] = server.request_json(f"Measure/{REMISSION}/$evaluate-measure?{query}")
    report = StrictMeasureReport(raw)

    assert report.measure == measure.url
    assert (
        report.type == {"population": "summary", "subject-list": "subject-list", "subject": "individual"}[report_type]
    )
    assert report.period.start.as_json() == "2026-01-01"
    assert report.group is not None
    numerator = next(p for p in report.group[0].population if p.code.coding[0].code == "numerator")
    assert numerator.count is not None
    assert numerator.count >= 1  # the clinic is shared by this package's tests; this patient is one of them
    if report_type == "subject-list":
        listed = {contained.id: contained for contained in report.contained or []}
        members = listed[numerator.subjectResults.reference.removeprefix("#")]
        assert f"Patient/{remitted_patient}" in {entry.item.reference for entry in members.entry or []}
