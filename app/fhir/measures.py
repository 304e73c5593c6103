"""The depression quality measures as FHIR R4: a Measure per measure, and ``$evaluate-measure``'s MeasureReport.

Pure: the result comes from ``app.clinical.measures`` (computed over the clinic's PHQ-9 totals by the router's call
to ``app.clinical.measure_reports``), so the FHIR answer and ``GET /v1/clinic/measures/{id}`` agree by construction.

A MeasureReport has one group per rate (CMS159: ``remission``; the 6-month measure: ``follow_up``, ``remission``,
``response``), each with the initial population (= the denominator: nothing is excluded, see ``NOT_APPLIED``), the
denominator and the numerator, and ``measureScore`` = numerator ÷ denominator (absent when the denominator is 0).
``reportType``: ``population`` (or ``summary``) → a summary report; ``subject-list`` → the same with each
population's patients as a contained List of Patient references (``subjectResults``); ``subject`` (or
``individual``) with ``subject=Patient/<id>`` → that patient's individual report (counts 0 or 1). The status is
``pending`` until the last window the period can use has closed, then ``complete``.

Da Vinci DEQM defines summary, subject-list and individual MeasureReport profiles, but the references this product
keeps name no profile URL, so no ``meta.profile`` is claimed: the reports follow base R4 (validated with the R4B
models).
"""

from __future__ import annotations

import re
import uuid
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport

from app.clinical.measures import (
    INDEX_PERIOD_NOTE,
    NOT_APPLIED,
    MeasureDefinition,
    MeasureResult,
    PatientOutcome,
    Rate,
    data_days,
)
from app.fhir.codes import MEASURE_BASE, MEASURE_IMPROVEMENT, MEASURE_POPULATION, MEASURE_SCORING
from app.fhir.content_version import with_content_version
from app.fhir.errors import InvalidParameter, Issue

MEASURE_DATE = "2026-12-05"
"""When the Measures' definitions were last changed (``Measure.date``)."""
MEASURE_NAMES = {"depression-remission-12m": "DepressionRemission12m", "depression-response-6m": "DepressionResponse6m"}
RATE_TEXT = {
    Rate.REMISSION: "Remission: the last PHQ-9 total in the window is < 5.",
    Rate.RESPONSE: "Response: the most recent PHQ-9 total in the window is at least 50 % below the index score.",
    Rate.FOLLOW_UP: "Follow-up: a PHQ-9 total in the window.",
}
POPULATIONS = ("initial-population", "denominator", "numerator")
_PARTIAL_DATE = re.compile(r"(?P<year>[0-9]{4})(-(?P<month>0[1-9]|1[0-2])(-(?P<day>0[1-9]|[12][0-9]|3[01]))?)?")


class ReportType(StrEnum):
    SUMMARY = "summary"
    SUBJECT_LIST = "subject-list"
    INDIVIDUAL = "individual"


REPORT_TYPES = {
    "population": ReportType.SUMMARY,
    "summary": ReportType.SUMMARY,
    "subject-list": ReportType.SUBJECT_LIST,
    "subject": ReportType.INDIVIDUAL,
    "individual": ReportType.INDIVIDUAL,
}
"""R4's ``reportType`` codes (``subject``, ``subject-list``, ``population``) and the MeasureReport types they give
(``individual``, ``subject-list``, ``summary``), which some clients send instead."""


def report_type(value: str | None, *, subject: str | None) -> ReportType:
    """The report asked for; without ``reportType``, ``subject`` if a subject is given, else ``population`` (R4)."""
    if value is None:
        return ReportType.INDIVIDUAL if subject is not None else ReportType.SUMMARY
    found = REPORT_TYPES.get(value)
    if found is None:
        raise _invalid("reportType", f"{value!r} is not a report type (allowed: {', '.join(REPORT_TYPES)})")
    if found is ReportType.INDIVIDUAL and subject is None:
        raise _invalid("subject", "reportType=subject needs subject=Patient/<id>")
    if found is not ReportType.INDIVIDUAL and subject is not None:
        raise _invalid("subject", f"subject is taken only with reportType=subject, not {value}")
    return found


def subject_id(value: str) -> uuid.UUID:
    """``Patient/<id>`` or ``<id>``: a patient's id (a UUID)."""
    try:
        return uuid.UUID(value.removeprefix("Patient/"))
    except ValueError:
        raise _invalid("subject", "expected Patient/<id>, the id a patient's UUID") from None


def period_day(name: str, value: str, *, end: bool) -> date:
    """A FHIR ``date`` (YYYY, YYYY-MM or YYYY-MM-DD): its first day for ``periodStart``, its last for ``periodEnd``."""
    match = _PARTIAL_DATE.fullmatch(value)
    if match is None:
        raise _invalid(name, f"{value!r} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year = int(match["year"])
    month = int(match["month"] or (12 if end else 1))
    try:
        last = monthrange(year, month)[1]
        return date(year, month, int(match["day"]) if match["day"] else (last if end else 1))
    except ValueError:
        raise _invalid(name, f"{value!r} is not a day of the calendar") from None


def _invalid(name: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"{name}: {message}", issues=[Issue("invalid", f"{name}: {message}")])


def canonical(measure: MeasureDefinition) -> str:
    return f"{MEASURE_BASE}:{measure.id}"


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def measure_resource(measure: MeasureDefinition) -> Measure:
    """The Measure: what it counts, where its logic comes from, and what it leaves out (``disclaimer``)."""
    resource: dict[str, Any] = {
        "resourceType": "Measure",
        "id": measure.id,
        "url": canonical(measure),
        "name": MEASURE_NAMES[measure.id],
        "title": measure.title,
        "status": "active",
        "experimental": False,
        "date": MEASURE_DATE,
        "description": measure.description,
        "relatedArtifact": [{"type": "derived-from", "display": measure.source}],
        "disclaimer": " ".join(NOT_APPLIED),
        "scoring": _coded(MEASURE_SCORING, "proportion"),
        "improvementNotation": _coded(MEASURE_IMPROVEMENT, "increase"),
        "guidance": f"Index period: {INDEX_PERIOD_NOTE[measure.id]} Window: {measure.window_text}.",
        "group": [
            {
                "id": rate.value.replace("_", "-"),
                "description": RATE_TEXT[rate],
                "population": [
                    {
                        "code": _coded(MEASURE_POPULATION, code),
                        "criteria": {"language": "text/plain", "expression": _population_text(rate, code)},
                    }
                    for code in POPULATIONS
                ],
            }
            for rate in measure.rates
        ],
    }
    return Measure.model_validate(with_content_version(resource))


def _population_text(rate: Rate, code: str) -> str:
    """A population's rule in words (``criteria``, ``text/plain``): it is computed by the server, not by CQL."""
    if code == "numerator":
        return RATE_TEXT[rate]
    return (
        "Patients whose first PHQ-9 total > 9 in the index period is their index (the denominator: no exclusions are "
        "applied)."
    )


@dataclass(frozen=True)
class Evaluation:
    result: MeasureResult
    kind: ReportType
    now: datetime
    subject: uuid.UUID | None = None


def measure_report(evaluation: Evaluation) -> MeasureReport:
    result = evaluation.result
    measure = result.measure
    today = evaluation.result.today(evaluation.now)
    listed = evaluation.kind is ReportType.SUBJECT_LIST
    contained: list[dict[str, Any]] = []
    groups = []
    for rate in measure.rates:
        members = {
            "initial-population": result.outcomes,
            "denominator": result.outcomes,
            "numerator": result.in_numerator(rate),
        }
        populations = []
        for code in POPULATIONS:
            population: dict[str, Any] = {"code": _coded(MEASURE_POPULATION, code), "count": len(members[code])}
            if listed:
                list_id = f"{rate.value.replace('_', '-')}-{code}"
                contained.append(_patient_list(list_id, members[code], evaluation.now))
                population["subjectResults"] = {"reference": f"#{list_id}"}
            populations.append(population)
        group: dict[str, Any] = {"id": rate.value.replace("_", "-"), "population": populations}
        score = result.rate(rate)
        if score is not None:
            group["measureScore"] = {"value": score}
        groups.append(group)
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete" if today > data_days(measure, result.period).end else "pending",
        "type": evaluation.kind.value,
        "measure": canonical(measure),
        "date": evaluation.now.isoformat(),
        "period": {"start": result.period.start.isoformat(), "end": result.period.end.isoformat()},
        "improvementNotation": _coded(MEASURE_IMPROVEMENT, "increase"),
        "group": groups,
    }
    if evaluation.subject is not None:
        report["subject"] = {"reference": f"Patient/{evaluation.subject}"}
    if contained:
        report["contained"] = contained
    return MeasureReport.model_validate(report)


def _patient_list(list_id: str, outcomes: tuple[PatientOutcome, ...], now: datetime) -> dict[str, Any]:
    patients = dict.fromkeys(outcome.patient_id for outcome in outcomes)
    found: dict[str, Any] = {"resourceType": "List", "id": list_id, "status": "current", "mode": "snapshot"}
    if patients:
        found["entry"] = [{"item": {"reference": f"Patient/{patient}"}} for patient in patients]
    else:
        found["emptyReason"] = {"text": "No patient is in this population."}
    found["date"] = now.isoformat()
    return found
