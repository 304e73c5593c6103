"""Recording measurements, and everything that follows from a new one: the one place every path in goes through.

The REST ingest and amendment, FHIR QuestionnaireResponses (POST, PUT, Bundles), research imports (and the synthetic
cohorts built on them) and re-scoring all store measurements here, never through ``app.measurements.store`` itself
(an import-linter contract allows only this module to import it). Each function stores in the caller's transaction
and then, in the same transaction, does what a new measurement or version causes elsewhere:

- ``app.clinical.alerts``: an urgent alert per item-9 risk flag (a new version raises another only when it raises
  item 9 above every value already alerted for the measurement; none is ever cleared), a routine ``item9_missing``
  prompt for an unanswered item 9, and a webhook delivery per alert that pages (the clinic has a webhook; the alert
  is not historical) with its job, sent by the job engine after the commit.
- ``app.clinical.progress.alerts``: a job that judges each course the measurements belong to a minute later (one per
  patient and instrument however many arrive meanwhile) and raises a ``not_on_track`` alert if it turned not on
  track (routine, no webhook; once per course until acknowledged).
- ``app.care.completion``: the assessment occurrence whose window the measurement falls in is completed (whenever
  it arrives); an amendment that moves ``measured_at`` out of the window it completed reopens that one.

Work that a new measurement must cause in another domain belongs in ``_after_new`` / ``_after_version`` below.
The measurement itself is built, and scored once, by ``app.measurements.service.new_measurement`` / ``new_version``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.care import completion
from app.clinical import alerts
from app.clinical.progress import alerts as progress_alerts
from app.instruments.registry import InstrumentRegistry
from app.measurements import service as measurements
from app.measurements import store
from app.measurements.models import Measurement
from app.measurements.service import NewMeasurement
from app.scoring import SCORER_VERSION
from app.scoring.definition import InstrumentDefinition


def record(db: Session, new: Sequence[NewMeasurement]) -> list[dict[str, Any]]:
    """Store new measurements (one statement for all), then what follows from them; returns each stored row's
    column values. All or nothing, in the caller's transaction."""
    rows = store.insert(db, new)
    _after_new(db, rows, {data.definition.id: data.definition for data in new})
    return rows


def record_one(db: Session, new: NewMeasurement) -> dict[str, Any]:
    """``record`` of one measurement, whose patient is not looked up first: NotFound when the database refuses it
    (another clinic's patient, or none)."""
    row = store.insert_one(db, new)
    _after_new(db, [row], {new.definition.id: new.definition})
    return row


def record_version(db: Session, current: Measurement, new: NewMeasurement, *, reason: str) -> Measurement:
    """Supersede ``current`` with ``new`` (``measurements.new_version``), then what follows from the new version."""
    row = store.insert_version(db, current, new, reason=reason)
    _after_version(db, row, new.definition)
    return row


def rescore(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    instrument_id: str,
    recorded_by_key_id: uuid.UUID,
) -> tuple[int, int]:
    """Amend every current measurement of the clinic scored under an older definition or scorer version.

    Returns (re-scored, already current). All or nothing: answers the new definition refuses abort the whole run.
    """
    definition = registry.get(instrument_id)
    outdated, current = measurements.outdated(db, registry, clinic_id=clinic_id, instrument_id=instrument_id)
    reason = f"re-scored under {definition.id} definition {definition.version} (scorer {SCORER_VERSION})"
    for row in outdated:
        new = measurements.new_version(
            registry, row, items=row.items, recorded_by_key_id=recorded_by_key_id, declared_total=row.declared_total
        )
        record_version(db, row, new, reason=reason)
    return len(outdated), current - len(outdated)


def _after_new(db: Session, rows: Sequence[Mapping[str, Any]], definitions: Mapping[str, InstrumentDefinition]) -> None:
    """What follows from measurements just stored (their column values): none can have alerts yet."""
    alerts.raise_alerts_for_new(db, rows)
    progress_alerts.defer_checks(db, rows, definitions)
    completion.complete_for(db, rows)


def _after_version(db: Session, row: Measurement, definition: InstrumentDefinition) -> None:
    """What follows from a new version: alerts for what its measurement was not alerted for yet (a higher item 9, a
    first ``item9_missing``), its course judged again; the assessment it completes follows its ``measured_at``."""
    alerts.raise_alerts_for(db, row)
    progress_alerts.defer_checks(db, [_course_of(row)], {definition.id: definition})
    completion.complete_version(db, row)


def _course_of(row: Measurement) -> dict[str, Any]:
    return {"clinic_id": row.clinic_id, "patient_id": row.patient_id, "instrument_id": row.instrument_id}
