"""The audit trail cannot be rewritten: the database itself refuses to update or delete an audit row."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.state import state_of
from tests.conftest import ClinicKeys


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET status_code = 200, outcome = 'success' WHERE clinic_id = :clinic",
        "UPDATE audit_event SET patient_id = NULL WHERE clinic_id = :clinic",
        "DELETE FROM audit_event WHERE clinic_id = :clinic",
        "DELETE FROM audit_event",
    ],
)
def test_the_audit_trail_cannot_be_rewritten(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, statement: str
) -> None:
    client.get("/v1/patients", headers=clinic.headers(Role.RESEARCHER))  # a refusal: the row a culprit would erase
    client.get("/v1/patients", headers=clinic.headers())
    count = select(func.count()).select_from(AuditEvent).where(AuditEvent.clinic_id == clinic.id)
    with state_of(app).engine.connect() as connection:
        before = connection.execute(count).scalar_one()
        rows = connection.execute(select(AuditEvent.status_code).where(AuditEvent.clinic_id == clinic.id)).all()
    assert before >= 2

    with pytest.raises(DBAPIError, match="append-only"), state_of(app).write_sessions() as db, db.begin():
        db.execute(text(statement), {"clinic": clinic.id.hex if _sqlite(app) else clinic.id})

    with state_of(app).engine.connect() as connection:
        assert connection.execute(count).scalar_one() == before
        assert connection.execute(select(AuditEvent.status_code).where(AuditEvent.clinic_id == clinic.id)).all() == rows


def test_the_orm_cannot_rewrite_an_audit_row_either(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    client.get("/v1/patients", headers=clinic.headers())
    with state_of(app).write_sessions() as db, db.begin():
        row = db.scalars(select(AuditEvent).where(AuditEvent.clinic_id == clinic.id)).first()
        assert row is not None
        db.delete(row)
        with pytest.raises(DBAPIError, match="append-only"):
            db.flush()
        db.rollback()


def _sqlite(app: FastAPI) -> bool:
    return bool(state_of(app).engine.dialect.name == "sqlite")
