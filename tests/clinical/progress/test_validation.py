"""Done when: on a generated clinic with known improving, typical and deteriorating courses, the progress endpoint
flags the deteriorating ones and leaves nearly all the others on track (sensitivity and specificity printed).

The courses are a seeded SIMULATION (``simulation.py``, parameters there; not norms). They are stored through the
API (a bulk import, which also runs the not-on-track alert hook batch-wise), a table is fitted from the completed
training courses, and held-out courses imported afterwards are judged one by one through
``GET /v1/patients/{id}/progress``. The same held-out courses in a clinic without a table are judged by the reliable
change rule, for comparison. Deterministic: fixed seeds, and the thresholds sit well below the figures observed
(printed with ``pytest -s``; docs/progress.md quotes them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical.progress.alerts import CHECK_DELAY
from app.core.db import utcnow
from tests.clinical.conftest import phq9
from tests.clinical.progress.simulation import Kind, SimulatedCourse, simulate
from tests.conftest import ClinicKeys, new_clinic, run_jobs

TRAINING: dict[Kind, int] = {"typical": 80, "improving": 28, "deteriorating": 12}
HELD_OUT: dict[Kind, int] = {"typical": 60, "improving": 20, "deteriorating": 30}
FLAGGED = {"not_on_track", "reliable_deterioration"}


def store(client: TestClient, clinic: ClinicKeys, courses: list[SimulatedCourse]) -> dict[str, str]:
    """Import every course (one NDJSON file); returns each course's patient id."""
    lines = [
        json.dumps(
            {
                "external_id": course.external_id,
                "instrument": "phq9",
                "measured_at": course.measured_at(index).isoformat(),
                "items": phq9(total),
            }
        )
        for course in courses
        for index, total in enumerate(course.totals)
    ]
    response = client.post(
        "/v1/research/imports",
        content=("\n".join(lines) + "\n").encode(),
        params={"create_patients": "true"},
        headers=clinic.headers(Role.ADMIN, {"Content-Type": "application/x-ndjson"}),
    )
    assert response.status_code == 201, response.text
    ids = {}
    for course in courses:
        found = client.get("/v1/patients", params={"external_id": course.external_id}, headers=clinic.headers())
        ids[course.external_id] = found.json()["items"][0]["id"]
    return ids


def judge(
    client: TestClient, clinic: ClinicKeys, courses: list[SimulatedCourse], ids: dict[str, str]
) -> dict[str, str]:
    statuses = {}
    for course in courses:
        response = client.get(
            f"/v1/patients/{ids[course.external_id]}/progress", params={"instrument": "phq9"}, headers=clinic.headers()
        )
        assert response.status_code == 200, response.text
        statuses[course.external_id] = response.json()["status"]
    return statuses


def rates(courses: list[SimulatedCourse], statuses: dict[str, str]) -> tuple[float, float]:
    deteriorating = [c for c in courses if c.kind == "deteriorating"]
    others = [c for c in courses if c.kind != "deteriorating"]
    sensitivity = sum(statuses[c.external_id] in FLAGGED for c in deteriorating) / len(deteriorating)
    specificity = sum(statuses[c.external_id] not in FLAGGED for c in others) / len(others)
    return sensitivity, specificity


def test_the_progress_endpoint_flags_deteriorating_courses_and_leaves_typical_ones_on_track(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    training = simulate(TRAINING, seed=2101, start=datetime(2025, 1, 6, 9, tzinfo=UTC), prefix="train")
    held_out = simulate(HELD_OUT, seed=2102, start=datetime(2026, 3, 2, 9, tzinfo=UTC), prefix="test")
    store(client, clinic, training)
    fitted = client.post(
        "/v1/clinic/expected-response/phq9", json={"score": "total"}, headers=clinic.headers(Role.ADMIN)
    )
    assert fitted.status_code == 201, fitted.text
    table = fitted.json()
    assert table["courses"] == sum(TRAINING.values())
    ids = store(client, clinic, held_out)

    by_table = judge(client, clinic, held_out, ids)
    without_table = new_clinic(app)
    by_rule = judge(client, without_table, held_out, store(client, without_table, held_out))

    table_rates = rates(held_out, by_table)
    rule_rates = rates(held_out, by_rule)
    print(  # noqa: T201  (the figures the issue asks to see; shown with pytest -s)
        f"\nprogress validation (simulated, {len(held_out)} held-out courses: {HELD_OUT}; table fitted from "
        f"{table['courses']} courses, b = {[round(table['coefficients'][k], 3) for k in ('b0', 'b1', 'b2', 'b3')]})"
        f"\n  expected-response table: sensitivity {table_rates[0]:.3f}, specificity {table_rates[1]:.3f}"
        f"\n  reliable change rule:    sensitivity {rule_rates[0]:.3f}, specificity {rule_rates[1]:.3f}"
    )
    # Observed: table 0.867 / 1.000, rule 1.000 / 0.775 (docs/progress.md).
    assert table_rates[0] >= 0.75
    assert table_rates[1] >= 0.90
    assert rule_rates[0] >= 0.90
    assert {by_table[c.external_id] for c in held_out} <= {
        "on_track",
        "not_on_track",
        "reliable_deterioration",
        "recovered",
    }
    run_jobs(app, now=utcnow() + CHECK_DELAY)  # each course is judged a minute after its last measurement
    alerts = client.get("/v1/clinic/alerts", params={"limit": 200}, headers=clinic.headers()).json()["items"]
    held_out_ids = set(ids.values())
    alerted = {a["patient"]["id"] for a in alerts if a["flag"] == "not_on_track"} & held_out_ids
    assert alerted == {ids[c.external_id] for c in held_out if by_table[c.external_id] == "not_on_track"}
