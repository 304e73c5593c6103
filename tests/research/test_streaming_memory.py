"""A CSV export streams in constant memory: three times the rows must not need more memory.

The export is requested through the whole ASGI application (authentication, the streaming response and its own
database session), with a client that throws each chunk away, and Python's allocations are traced
(``tracemalloc`` follows every thread, including the one that runs the row generator). TestClient is not used
because it collects the whole body.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from app.core.db import transaction
from app.core.state import state_of
from app.instruments import service as scoring
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients.models import Patient
from app.scoring import SCORER_VERSION
from tests.conftest import ClinicKeys

PATIENTS = 300
WEEKS = 24
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SMALL_WEEKS = 8
"""January and February 2026 (weeks 0–7 of 24): a third of the rows. Periods are whole months for a researcher."""
ROWS_PER_MEASUREMENT = 7
"""The SCS-SF has seven scores (total and six subscales): one long row each."""
GROWTH_BOUND = 1_000_000
"""Extra peak bytes allowed for 33,600 more rows; building them in memory would take well over 10 MB."""


def store_many(app: FastAPI, clinic: ClinicKeys) -> int:
    """300 patients × 24 weekly SCS-SF answers, scored by the scoring service and inserted in bulk (fixture speed)."""
    registry = state_of(app).part(InstrumentRegistry)
    definition = registry.get("scs_sf")
    scored = []
    for level in range(1, 6):
        result = scoring.score_answers(definition, {str(n): level for n in range(1, 13)})
        scored.append(({str(n): level for n in range(1, 13)}, scoring.stored_scores(result)))
    patients = [uuid.uuid4() for _ in range(PATIENTS)]
    rows: list[dict[str, Any]] = []
    for index, patient in enumerate(patients):
        for week in range(WEEKS):
            items, scores = scored[(index + week) % len(scored)]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "measurement_id": uuid.uuid4(),
                    "version": 1,
                    "is_current": True,
                    "clinic_id": clinic.id,
                    "patient_id": patient,
                    "instrument_id": "scs_sf",
                    "definition_version": definition.version,
                    "scorer_version": SCORER_VERSION,
                    "measured_at": START + timedelta(days=7 * week),
                    "items": items,
                    "complete": True,
                    "missing_items": [],
                    "scores": scores,
                    "flags": [],
                    "warnings": [],
                    "source": "import",
                    "created_at": START,
                }
            )
    for db in transaction(state_of(app).write_sessions):
        db.execute(insert(Patient), [{"id": p, "clinic_id": clinic.id, "created_at": START} for p in patients])
        db.execute(insert(Measurement), rows)
    if state_of(app).engine.dialect.name == "postgresql":
        # What autovacuum would soon do after a bulk load: without statistics the planner joins row by row.
        with state_of(app).engine.connect() as connection:
            connection.execute(text("ANALYZE measurement"))
            connection.commit()
    return len(rows)


async def stream_export(app: FastAPI, key: str, query: str) -> tuple[int, int, int]:
    """(status, body bytes, body lines) of one export, discarding every chunk as it arrives."""
    status, size, lines = 0, 0, 0
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, size, lines
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            size += len(body)
            lines += body.count(b"\n")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/research/export",
        "raw_path": b"/v1/research/export",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return status, size, lines


def peak_bytes(app: FastAPI, key: str, query: str) -> tuple[int, int]:
    """(peak traced bytes, CSV lines) of one export."""
    tracemalloc.start()
    try:
        status, _size, lines = anyio.run(stream_export, app, key, query)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200
    return peak, lines


@pytest.mark.usefixtures("client")  # the app's lifespan then disposes of its pool at the end of the session
def test_a_csv_export_three_times_larger_needs_no_more_memory(
    app: FastAPI, clinic: ClinicKeys, researcher: dict[str, str]
) -> None:
    measurements = store_many(app, clinic)
    key = researcher["Authorization"].removeprefix("Bearer ")
    anyio.run(stream_export, app, key, "instruments=scs_sf&to=2026-01-31T23:59:59Z")  # warm caches, untraced

    small_peak, small_lines = peak_bytes(app, key, "instruments=scs_sf&to=2026-02-28T23:59:59Z")
    large_peak, large_lines = peak_bytes(app, key, "instruments=scs_sf")

    # Mondays 5 January to 23 February are 8 weeks: 300 patients × 8 weeks × 7 scores = 16,800 rows; all 24 weeks
    # give 50,400 rows (each export plus its header line).
    assert measurements == PATIENTS * WEEKS
    assert small_lines == PATIENTS * SMALL_WEEKS * ROWS_PER_MEASUREMENT + 1
    assert large_lines == PATIENTS * WEEKS * ROWS_PER_MEASUREMENT + 1
    assert large_peak - small_peak < GROWTH_BOUND, (small_peak, large_peak)
