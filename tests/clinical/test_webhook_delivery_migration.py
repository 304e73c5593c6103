"""The migration that moved webhook deliveries onto the job engine: existing rows get their event, dedupe key and
status, and each one still pending gets a job that delivers it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from app.core.migrations import alembic_config

REVISION = "7c4d2e8f1b36"


def test_existing_deliveries_are_given_a_status_and_the_pending_ones_a_job(tmp_path: Path) -> None:
    config = alembic_config(f"sqlite:///{tmp_path / 'before.db'}")
    command.upgrade(config, "5b1e0c7d9a21")
    engine = create_engine(f"sqlite:///{tmp_path / 'before.db'}")  # foreign keys off: SQLite's default
    clinic, patient = uuid.uuid4(), uuid.uuid4()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    rows = {"delivered": (1, now), "pending": (3, None), "exhausted": (10, None)}
    alerts = {name: uuid.uuid4() for name in rows}
    deliveries = {name: uuid.uuid4() for name in rows}
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO clinic (id, name, created_at) VALUES (:id, 'c', :now)"), {"id": clinic.hex, "now": now}
        )
        for name, (attempts, delivered_at) in rows.items():
            connection.execute(
                text(
                    "INSERT INTO risk_alert (id, clinic_id, patient_id, measurement_id, measurement_row_id, "
                    "instrument_id, flag, measured_at, raised_at) VALUES (:id, :clinic, :patient, :m, :m, 'phq9', "
                    "'item9_positive', :now, :now)"
                ),
                {
                    "id": alerts[name].hex,
                    "clinic": clinic.hex,
                    "patient": patient.hex,
                    "m": uuid.uuid4().hex,
                    "now": now,
                },
            )
            connection.execute(
                text(
                    "INSERT INTO webhook_delivery (id, clinic_id, alert_id, url, payload, created_at, attempts, "
                    "delivered_at) VALUES (:id, :clinic, :alert, 'https://hooks.clinic.example/a', '{}', :now, "
                    ":attempts, :delivered_at)"
                ),
                {
                    "id": deliveries[name].hex,
                    "clinic": clinic.hex,
                    "alert": alerts[name].hex,
                    "now": now,
                    "attempts": attempts,
                    "delivered_at": delivered_at,
                },
            )

    command.upgrade(config, REVISION)
    with engine.connect() as connection:
        found = {
            row[0]: row[1:]
            for row in connection.execute(text("SELECT id, event, dedupe_key, status FROM webhook_delivery"))
        }
        jobs = connection.execute(text("SELECT task_name, args, status FROM background_job")).all()
    engine.dispose()

    for name, status in (("delivered", "delivered"), ("pending", "pending"), ("exhausted", "failed")):
        assert found[deliveries[name].hex] == ("risk_alert.raised", f"risk_alert.raised:{alerts[name]}", status)
    assert [(task, json.loads(args), status) for task, args, status in jobs] == [
        ("clinical.deliver_webhook", {"delivery_id": str(deliveries["pending"])}, "todo")
    ]
