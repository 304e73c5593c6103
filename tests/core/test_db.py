from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from app.core.db import UTCDateTime, autocommit, create_db_engine, insert_rows, watch_inserts
from app.patients.models import Patient
from app.therapy_sessions.models import TherapySession
from tests.conftest import ClinicKeys, make_settings


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: object) -> None:
    engine = create_db_engine(make_settings(f"sqlite:///{tmp_path}/x.db"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_datetimes_are_stored_in_utc_and_read_back_aware() -> None:
    column = UTCDateTime()
    oslo = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

    stored = column.process_bind_param(oslo, None)
    assert stored == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert column.process_result_value(datetime(2026, 6, 1, 10, 0), None) == stored
    assert column.process_bind_param(None, None) is None
    assert column.process_result_value(None, None) is None
    with pytest.raises(ValueError, match="time zone"):
        column.process_bind_param(datetime(2026, 6, 1, 12, 0), None)


def test_insert_rows_and_flushes_both_tell_the_sessions_insert_watchers(app: FastAPI, clinic: ClinicKeys) -> None:
    seen: list[tuple[str, Any]] = []
    patient_id = uuid.uuid4()
    with app.state.write_sessions() as session, session.begin():
        watch_inserts(session, lambda table, values: seen.append((table, values.get("id"))))
        session.add(Patient(id=patient_id, clinic_id=clinic.id))
        session.flush()
        session_id = uuid.uuid4()
        insert_rows(
            session,
            TherapySession,
            [
                {
                    "id": session_id,
                    "clinic_id": clinic.id,
                    "patient_id": patient_id,
                    "started_at": datetime(2026, 1, 5, tzinfo=UTC),
                    "session_number": 1,
                    "episode": None,
                    "label": None,
                    "created_at": datetime(2026, 1, 5, tzinfo=UTC),
                }
            ],
        )
        insert_rows(session, TherapySession, [])
        assert session.scalar(select(TherapySession.id).where(TherapySession.id == session_id)) == session_id
    assert seen == [("patient", patient_id), ("therapy_session", session_id)]


def test_the_autocommit_engine_reads_outside_any_transaction(tmp_path: object) -> None:
    engine = create_db_engine(make_settings(f"sqlite:///{tmp_path}/x.db"))
    with autocommit(engine).connect() as connection:
        connection.execute(text("SELECT 1"))
        assert connection.connection.dbapi_connection.in_transaction is False  # type: ignore[union-attr]
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        assert connection.connection.dbapi_connection.in_transaction is True  # type: ignore[union-attr]
    engine.dispose()
