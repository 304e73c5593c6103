"""The migration of alerts that never miss: an existing item-9 alert takes the answer of the version that raised it
(``item_value``), is urgent and not historical; clinics are real and keep paging as before; no webhook delivery is
lost when SQLite rebuilds the alerts' table (up or down)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.core.migrations import alembic_config

REVISION = "b7d31e4a9c05"


def test_existing_alerts_take_their_item9_answer_and_keep_paging(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    engine = create_engine(url)
    clinic_id, patient_id, row_id, alert_id = (uuid.uuid4().hex for _ in range(4))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    items = {str(n): 1 for n in range(1, 9)} | {"9": 2}
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO clinic (id, name, created_at) VALUES (:id, 'North', :now)"), {"id": clinic_id, "now": now}
        )
        connection.execute(
            text("INSERT INTO clinic_settings (clinic_id, webhook_url, updated_at) VALUES (:id, :url, :now)"),
            {"id": clinic_id, "url": "https://h.example", "now": now},
        )
        connection.execute(
            text("INSERT INTO patient (id, clinic_id, created_at) VALUES (:id, :clinic, :now)"),
            {"id": patient_id, "clinic": clinic_id, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO measurement (id, measurement_id, version, is_current, clinic_id, patient_id, "
                "instrument_id, definition_version, scorer_version, measured_at, items, complete, missing_items, "
                "scores, flags, warnings, source, created_at) VALUES (:id, :id, 1, 1, :clinic, :patient, 'phq9', "
                "'1.0.0', '1', :now, :items, 1, '[]', '{}', '[\"item9_positive\"]', '[]', 'api', :now)"
            ),
            {"id": row_id, "clinic": clinic_id, "patient": patient_id, "now": now, "items": json.dumps(items)},
        )
        connection.execute(
            text(
                "INSERT INTO risk_alert (id, clinic_id, patient_id, measurement_id, measurement_row_id, instrument_id, "
                "flag, measured_at, raised_at) VALUES (:id, :clinic, :patient, :row, :row, 'phq9', 'item9_positive', "
                ":now, :now)"
            ),
            {"id": alert_id, "clinic": clinic_id, "patient": patient_id, "row": row_id, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO webhook_delivery (id, clinic_id, event, dedupe_key, alert_id, url, payload, status, "
                "created_at, attempts) VALUES (:id, :clinic, 'risk_alert.raised', :key, :alert, 'https://h.example', "
                "'{}', 'delivered', :now, 1)"
            ),
            {"id": uuid.uuid4().hex, "clinic": clinic_id, "key": f"risk_alert.raised:{alert_id}", "alert": alert_id}
            | {"now": now},
        )

    command.upgrade(config, REVISION)
    with engine.connect() as connection:
        alert = connection.execute(text("SELECT item_value, priority, historical FROM risk_alert")).one()
        settings = connection.execute(
            text("SELECT item9_missing_pages, historical_alert_days FROM clinic_settings")
        ).one()
        synthetic = connection.execute(text("SELECT synthetic FROM clinic")).scalar_one()
        deliveries = connection.execute(text("SELECT alert_id FROM webhook_delivery")).scalars().all()
    command.downgrade(config, before)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM webhook_delivery")).scalar_one()
    engine.dispose()

    assert tuple(alert) == (2, "urgent", 0)
    assert tuple(settings) == (0, 14)
    assert synthetic == 0
    # SQLite rebuilds risk_alert for its new unique key: the deliveries of its alerts survive, both ways.
    assert deliveries == [alert_id]
    assert kept == 1
