"""A generated cohort as import records: one PHQ-9, FCS (from others) and SCS-SF per observed patient-week.

Patient p of seed s is ``synthetic-s-pppp``; week w is answered at ``start + 7·w days``; sessions are numbered
1, 2, … over the weeks a patient was observed, so with missed weeks (MCAR) session numbers and calendar weeks part,
which is exactly what a lagged analysis must not confuse. The records have the bulk-import shape, so the same code
path (validated and scored like single posts) writes them into the service, and the file they are written to can
be imported later.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd

from app.instruments.registry import InstrumentRegistry
from app.research.imports import RawRecord
from app.research.instrument_map import DISPLAY_MAPS, answers_for

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""A Monday, 09:00 UTC."""


def start_ending_before(now: datetime, weeks: int) -> datetime:
    """Week 0 of a cohort whose last week is the one before ``now``'s: Monday 09:00 UTC, ``weeks`` weeks earlier.

    Every measurement then lies in the past, as the service requires of a clinical time (``ClinicalTime``).
    """
    today = now.astimezone(UTC).date()
    this_monday = today - timedelta(days=today.weekday())
    return datetime.combine(this_monday - timedelta(weeks=weeks), time(9), tzinfo=UTC)


EXTERNAL_ID_PREFIX = "synthetic-"
"""Every generated patient's external id starts so (``cohort_clinic`` tells generated patients from real ones)."""


def external_id(seed: int, patient: int) -> str:
    return f"{EXTERNAL_ID_PREFIX}{seed}-{patient:04d}"


def measurement_records(
    latent: pd.DataFrame, registry: InstrumentRegistry, *, seed: int, start: datetime = DEFAULT_START
) -> Iterator[dict[str, Any]]:
    """Import records for every observed patient-week of a latent cohort (``generator.generate_latent``)."""
    definitions = {display.construct: registry.get(display.instrument) for display in DISPLAY_MAPS}
    session_number = 0
    previous_patient = None
    columns = {display.construct: latent[display.construct].to_numpy(dtype=float) for display in DISPLAY_MAPS}
    patients = latent["patient"].to_numpy(dtype=int)
    weeks = latent["week"].to_numpy(dtype=int)
    for position in range(len(latent)):
        patient, week = int(patients[position]), int(weeks[position])
        session_number = session_number + 1 if patient == previous_patient else 1
        previous_patient = patient
        measured_at = (start + timedelta(days=7 * week)).isoformat()
        for display in DISPLAY_MAPS:
            latent_value = float(columns[display.construct][position])
            yield {
                "external_id": external_id(seed, patient),
                "instrument": display.instrument,
                "measured_at": measured_at,
                "session_number": session_number,
                "items": answers_for(definitions[display.construct], display, latent_value, rotate=patient * 7 + week),
            }


def raw_records(records: Iterator[dict[str, Any]]) -> list[RawRecord]:
    return [RawRecord(row=number, data=record) for number, record in enumerate(records, start=1)]


def item_columns(registry: InstrumentRegistry) -> int:
    """How many ``item_n`` columns a CSV of generated records needs."""
    return max(len(registry.get(display.instrument).items) for display in DISPLAY_MAPS)
