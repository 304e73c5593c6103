"""The analysis panel: one row per patient-week, each variable the week's last value of its instrument."""

from __future__ import annotations

import math
import uuid

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.state import state_of
from app.research.service import load_panel
from tests.conftest import ClinicKeys
from tests.research.conftest import all_items, measure, new_patient

VARIABLES = [("phq9", "total"), ("gad7", "total")]


def panel(app: FastAPI, clinic_id: uuid.UUID) -> pd.DataFrame:
    with state_of(app).read_sessions() as db:
        return load_panel(db, clinic_id=clinic_id, variables=VARIABLES)


def rows(frame: pd.DataFrame, patient: str) -> list[tuple[int, float | None, float | None]]:
    mine = frame[frame["patient"] == patient]
    return [
        (int(week), _value(phq9), _value(gad7))
        for week, phq9, gad7 in zip(mine["week"], mine["phq9.total"], mine["gad7.total"], strict=True)
    ]


def _value(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def test_each_week_keeps_its_last_value_of_each_instrument_a_null_score_included(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    first = new_patient(client, clinic)
    second = new_patient(client, clinic)
    # Week 0: two PHQ-9s, the later one counts.
    measure(client, clinic, first, "phq9", all_items(9, 1), "2026-01-05T23:30:00Z")
    measure(client, clinic, first, "phq9", all_items(9, 2), "2026-01-07T09:00:00Z")
    # Week 1 (a UTC calendar day 7 after the first, less than 7 × 24 hours later): a GAD-7, a PHQ-9, then a PHQ-9
    # with three items missing, whose total is null: the week's PHQ-9 is that null.
    measure(client, clinic, first, "gad7", all_items(7, 1), "2026-01-12T00:30:00Z")
    measure(client, clinic, first, "phq9", all_items(9, 3), "2026-01-13T09:00:00Z")
    unscored = measure(client, clinic, first, "phq9", all_items(6, 1), "2026-01-14T09:00:00Z")
    assert unscored["scores"]["total"]["value"] is None
    # Week 2 unmeasured; week 3: a PHQ-9 of zeros.
    measure(client, clinic, first, "phq9", all_items(9, 0), "2026-01-26T09:00:00Z")
    # Another patient's timeline starts at their own first measurement.
    measure(client, clinic, second, "gad7", all_items(7, 2), "2026-02-02T09:00:00Z")
    measure(client, clinic, second, "gad7", all_items(7, 3), "2026-02-03T09:00:00Z")
    # An instrument that is not a variable adds no week.
    measure(client, clinic, second, "phq9", all_items(9, 1), "2026-02-03T10:00:00Z")
    measure(client, clinic, second, "scs_sf", all_items(12, 3), "2026-02-20T09:00:00Z")

    frame = panel(app, clinic.id)

    assert list(frame.columns) == ["patient", "week", "phq9.total", "gad7.total"]
    assert rows(frame, first) == [(0, 18.0, None), (1, None, 7.0), (3, 0.0, None)]
    assert rows(frame, second) == [(0, 9.0, 21.0)]
    assert len(frame) == 4
    # Patient by patient, weeks in order.
    assert frame["patient"].tolist() in ([first] * 3 + [second], [second] + [first] * 3)


def test_a_clinic_without_measurements_has_an_empty_panel(app: FastAPI, clinic: ClinicKeys) -> None:
    frame = panel(app, clinic.id)

    assert frame.empty
    assert list(frame.columns) == ["patient", "week", "phq9.total", "gad7.total"]
