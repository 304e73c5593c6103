"""The migration that brought signed webhooks: a clinic that already had a webhook gets a signing secret with it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.core.migrations import alembic_config

REVISION = "ec0727bab888"


def test_a_clinic_with_a_webhook_before_signing_gets_a_signing_secret_by_the_migration(tmp_path: Path) -> None:
    config = alembic_config(f"sqlite:///{tmp_path / 'before.db'}")
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    engine = create_engine(f"sqlite:///{tmp_path / 'before.db'}")
    with_hook, without_hook = uuid.uuid4(), uuid.uuid4()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for clinic_id, url in ((with_hook, "https://hooks.clinic.example/a"), (without_hook, None)):
            connection.execute(
                text("INSERT INTO clinic (id, name, created_at) VALUES (:id, :name, :now)"),
                {"id": clinic_id.hex, "name": f"clinic-{clinic_id.hex[:8]}", "now": now},
            )
            connection.execute(
                text("INSERT INTO clinic_settings (clinic_id, webhook_url, updated_at) VALUES (:id, :url, :now)"),
                {"id": clinic_id.hex, "url": url, "now": now},
            )

    command.upgrade(config, REVISION)
    with engine.connect() as connection:
        salts = connection.execute(text("SELECT clinic_id, webhook_secret_salt FROM clinic_settings"))
        rows: dict[str, str | None] = {row[0]: row[1] for row in salts}
    engine.dispose()

    assert len(str(rows[with_hook.hex])) == 32
    assert rows[without_hook.hex] is None
