from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.clinical.models import RiskAlert
from app.core import db as db_module
from app.core.db import (
    UTCDateTime,
    create_db_engine,
    create_lookup_engine,
    insert_rows,
    insert_together,
    log_inserts,
    new_id,
    new_record_id,
    ping_when_idle,
    table_of,
)
from app.core.state import state_of
from app.measurements.models import Measurement
from app.patients.models import Patient
from app.therapy_sessions.models import TherapySession
from tests.conftest import ISSUE_PHQ9, POSTGRESQL_ONLY, ClinicKeys, make_settings
from tests.core.rows import audit_row


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


def test_insert_rows_and_flushes_are_both_in_the_sessions_insert_log(app: FastAPI, clinic: ClinicKeys) -> None:
    patient_id = uuid.uuid4()
    with state_of(app).write_sessions() as db, db.begin():
        log = log_inserts(db)
        db.add(Patient(id=patient_id, clinic_id=clinic.id))
        db.flush()
        session_id = uuid.uuid4()
        insert_rows(
            db,
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
        insert_rows(db, TherapySession, [])
        assert db.scalar(select(TherapySession.id).where(TherapySession.id == session_id)) == session_id
    assert [(table, values["id"]) for table, values in log] == [
        ("patient", patient_id),
        ("therapy_session", session_id),
    ]


def test_rows_of_a_rolled_back_savepoint_leave_the_insert_log(app: FastAPI, clinic: ClinicKeys) -> None:
    kept, dropped, inner, after = (uuid.uuid4() for _ in range(4))
    with state_of(app).write_sessions() as db, db.begin():
        log = log_inserts(db)
        with db.begin_nested():
            insert_rows(db, Patient, [_patient_row(kept, clinic.id)])
        with pytest.raises(RuntimeError):
            _insert_then_fail(db, [dropped, inner], clinic.id)
        db.add(Patient(id=after, clinic_id=clinic.id))
        db.flush()
    assert [values["id"] for _table, values in log] == [kept, after]


def test_a_flush_inside_a_savepoint_that_an_outer_one_rolls_back_leaves_the_insert_log(
    app: FastAPI, clinic: ClinicKeys
) -> None:
    kept, flushed, inserted = (uuid.uuid4() for _ in range(3))
    with state_of(app).write_sessions() as db, db.begin():
        log = log_inserts(db)
        insert_rows(db, Patient, [_patient_row(kept, clinic.id)])
        with pytest.raises(RuntimeError):
            _flush_insert_then_fail(db, flushed, inserted, clinic.id)
    assert [values["id"] for _table, values in log] == [kept]


def test_a_log_started_inside_a_savepoint_records_what_follows(app: FastAPI, clinic: ClinicKeys) -> None:
    patient_id = uuid.uuid4()
    with state_of(app).write_sessions() as db, db.begin():
        with db.begin_nested():
            log = log_inserts(db)
            insert_rows(db, Patient, [_patient_row(patient_id, clinic.id)])
        assert [values["id"] for _table, values in log] == [patient_id]


def _flush_insert_then_fail(db: Session, flushed: uuid.UUID, inserted: uuid.UUID, clinic_id: uuid.UUID) -> None:
    """An entry whose inner savepoint flushes an ORM row and is released, then the entry inserts a row and fails."""
    with db.begin_nested():
        with db.begin_nested():
            db.add(Patient(id=flushed, clinic_id=clinic_id))
            db.flush()
        insert_rows(db, Patient, [_patient_row(inserted, clinic_id)])
        raise RuntimeError("the entry failed")


def _insert_then_fail(db: Session, patient_ids: list[uuid.UUID], clinic_id: uuid.UUID) -> None:
    """An entry that inserts a row, a nested one inserts another, then the entry fails: all in savepoints."""
    with db.begin_nested():
        insert_rows(db, Patient, [_patient_row(patient_ids[0], clinic_id)])
        with db.begin_nested():
            insert_rows(db, Patient, [_patient_row(patient_ids[1], clinic_id)])
        raise RuntimeError("the entry failed")


def _patient_row(patient_id: uuid.UUID, clinic_id: uuid.UUID) -> dict[str, Any]:
    return {"id": patient_id, "clinic_id": clinic_id, "created_at": datetime(2026, 1, 5, tzinfo=UTC)}


def test_the_autocommit_engine_reads_outside_any_transaction(tmp_path: object) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/x.db")
    engine = create_db_engine(settings)
    with create_lookup_engine(settings, engine).connect() as connection:
        connection.execute(text("SELECT 1"))
        assert connection.connection.dbapi_connection.in_transaction is False  # type: ignore[union-attr]
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        assert connection.connection.dbapi_connection.in_transaction is True  # type: ignore[union-attr]
    engine.dispose()


def _pooled_connection_closed_behind_the_pools_back(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.close()


def test_a_connection_that_died_while_idle_is_replaced_before_use(tmp_path: object) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/x.db", pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0)
    _pooled_connection_closed_behind_the_pools_back(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_a_recently_used_connection_is_not_pinged(tmp_path: object) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/x.db", pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=3600)
    _pooled_connection_closed_behind_the_pools_back(engine)
    with engine.connect() as connection, pytest.raises(DBAPIError):
        connection.execute(text("SELECT 1"))
    engine.dispose()


@pytest.mark.parametrize("count", [1, 3, 51])
def test_rows_inserted_together_are_stored_as_an_executemany_stores_them(
    app: FastAPI, clinic: ClinicKeys, count: int
) -> None:
    events = table_of(AuditEvent)
    rows = [audit_row(clinic, uuid.uuid4(), index) for index in range(count)]
    with state_of(app).write_sessions() as db, db.begin():
        insert_together(db.connection(), events, rows)
    with state_of(app).read_sessions() as db:
        stored = db.execute(
            select(events).where(events.c.id.in_([row["id"] for row in rows])).order_by(events.c.resource_id)
        ).mappings()
        found = {row["id"]: dict(row) for row in stored}
    assert len(found) == count
    for row in rows:
        assert found[row["id"]] == {**row, "occurred_at": row["occurred_at"].astimezone(UTC)}


def test_many_rows_sharing_values_store_each_value_where_it_belongs(
    app: FastAPI, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, values that every row shares are formatted once and joined to each row's own, chunk by chunk:
    escapes in both (a tab, a line break, a backslash, quotes in JSON) land in the right row and column."""
    monkeypatch.setattr(db_module, "COPY_CHUNK", 7)
    events = table_of(AuditEvent)
    route = "/v1/shared\tby\nall\\N"
    details = {"shared": 'line\nbreak\ttab \\ "q"'}
    rows = [
        {
            **audit_row(clinic, new_record_id(), index),
            "route": route,
            "details": details,
            "resource_id": f"r\t{index}\n\\",
        }
        for index in range(60)
    ]
    with state_of(app).write_sessions() as db, db.begin():
        insert_together(db.connection(), events, rows)
    with state_of(app).read_sessions() as db:
        stored = db.execute(select(events).where(events.c.id.in_([row["id"] for row in rows]))).mappings()
        found = {row["id"]: dict(row) for row in stored}
    assert [found[row["id"]] for row in rows] == [
        {**row, "occurred_at": row["occurred_at"].astimezone(UTC)} for row in rows
    ]


def test_record_ids_sort_in_the_order_they_were_made_and_identities_stay_random() -> None:
    records = [new_record_id() for _ in range(10_000)]
    assert {record.version for record in records} == {7}
    assert records == sorted(records)
    assert len(set(records)) == len(records)
    assert new_id().version == 4


def test_rows_written_in_volume_get_time_ordered_ids_and_the_patient_a_random_one(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert response.status_code == 201, response.text
    measurement_id = uuid.UUID(response.json()["id"])

    with state_of(app).read_sessions() as db:
        row = db.execute(select(Measurement).where(Measurement.measurement_id == measurement_id)).scalar_one()
        alert = db.execute(select(RiskAlert).where(RiskAlert.measurement_id == measurement_id)).scalar_one()
        audited = db.scalars(select(AuditEvent.id).where(AuditEvent.resource_id == str(measurement_id))).all()
    assert (measurement_id.version, row.id.version, alert.id.version) == (7, 7, 7)
    assert audited
    assert {event.version for event in audited} == {7}
    assert uuid.UUID(patient_id).version == 4


def test_many_rows_with_a_duplicate_key_store_none_and_raise_as_one_row_would(app: FastAPI, clinic: ClinicKeys) -> None:
    """Many rows go as one statement (a COPY on PostgreSQL): one bad row refuses them all, with SQLAlchemy's error
    class, so a Bundle can fall back to storing its entries one by one."""
    rows = [audit_row(clinic, new_record_id(), index) for index in range(60)]
    rows[-1]["id"] = rows[0]["id"]
    assert_refused_whole(app, rows, IntegrityError)


@POSTGRESQL_ONLY
def test_many_rows_with_a_value_postgresql_cannot_store_store_none(app: FastAPI, clinic: ClinicKeys) -> None:
    rows = [audit_row(clinic, new_record_id(), index) for index in range(60)]
    rows[-1]["route"] = "/v1/\x00"
    assert_refused_whole(app, rows, DataError)


def assert_refused_whole(app: FastAPI, rows: list[dict[str, Any]], error: type[DBAPIError]) -> None:
    """Inserting ``rows`` raises ``error`` and stores none of them; the transaction goes on after its savepoint."""
    events = table_of(AuditEvent)
    with state_of(app).write_sessions() as db, db.begin():
        with pytest.raises(error), db.begin_nested():
            insert_rows(db, AuditEvent, rows)
        insert_rows(db, AuditEvent, rows[:1])
    with state_of(app).read_sessions() as db:
        ids = [row["id"] for row in rows]
        assert db.scalars(select(events.c.id).where(events.c.id.in_(ids))).all() == [rows[0]["id"]]


def test_many_rows_without_a_defaulted_column_get_its_default(app: FastAPI, clinic: ClinicKeys) -> None:
    """A COPY would apply no column default: rows that leave a column out go as an executemany, which does."""
    rows = [audit_row(clinic, new_record_id(), index) for index in range(60)]
    for row in rows:
        del row["details"]
    with state_of(app).write_sessions() as db, db.begin():
        insert_rows(db, AuditEvent, rows)
    events = table_of(AuditEvent)
    with state_of(app).read_sessions() as db:
        stored = db.scalars(select(events.c.details).where(events.c.id.in_([row["id"] for row in rows])))
        assert stored.all() == [{}] * 60


def test_a_database_error_names_no_bound_value(app: FastAPI) -> None:
    """Bound values are patient data: a database error's message (what a logged traceback shows) never carries them,
    on any engine the service creates."""
    secret = f"PATIENT-ANSWER-{uuid.uuid4().hex}"
    engines = {
        "read": state_of(app).engine,
        "write": state_of(app).write_sessions.kw["bind"],
        "lookup": state_of(app).database.lookups,
    }
    for name, engine in engines.items():
        with engine.connect() as connection, pytest.raises(DBAPIError) as refused:
            connection.execute(text("SELECT * FROM no_such_table WHERE value = :value"), {"value": secret})
        assert secret not in str(refused.value), name
        assert "hidden" in str(refused.value), name
    loop_writes = state_of(app).database.loop_writes
    if loop_writes is not None:  # PostgreSQL: the bounded writes' asyncio engine
        assert loop_writes.sync_engine.hide_parameters
