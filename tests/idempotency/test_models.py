"""Records stored before secrets were withheld lose their secrets when the database is migrated."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from app.core.migrations import alembic_config
from tests.conftest import BACKENDS, FreshPostgresDatabase

WITHHOLDING_REVISION = "dd5137164675"
BEFORE = "f78a36652ed8"

clinic = sa.table("clinic", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()))
api_key = sa.table(
    "api_key",
    *(sa.column(name) for name in ("role", "prefix", "key_hash")),
    sa.column("id", sa.Uuid()),
    sa.column("clinic_id", sa.Uuid()),
    sa.column("created_at", sa.DateTime()),
)
record = sa.table(
    "idempotency_record",
    *(sa.column(name) for name in ("key", "fingerprint", "status_code", "response_body")),
    sa.column("id", sa.Uuid()),
    sa.column("api_key_id", sa.Uuid()),
    sa.column("created_at", sa.DateTime()),
)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'before.db'}"
        return
    with FreshPostgresDatabase() as url:
        yield url


def test_secrets_stored_by_earlier_versions_are_removed_by_the_migration(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, BEFORE)
    key_secret = "co_0123456789ab_" + "s" * 43
    bodies = {
        "api-key": {"id": str(uuid.uuid4()), "prefix": "0123456789ab", "role": "clinician", "key": key_secret},
        "enrolment": {
            "id": str(uuid.uuid4()),
            "patient_id": str(uuid.uuid4()),
            "code": "ABCD-EFGH-JKLM",
            "enrolment_uri": "https://example.test/v1/enrolments/exchange?code=ABCD-EFGH-JKLM",
            "expires_at": "2026-12-01T00:00:00Z",
        },
        "patient": {"id": str(uuid.uuid4()), "key": "not a secret of a known shape"},
    }
    engine = sa.create_engine(empty_database)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        clinic_id, key_id = uuid.uuid4(), uuid.uuid4()
        connection.execute(sa.insert(clinic).values(id=clinic_id, name="before", created_at=now))
        connection.execute(
            sa.insert(api_key).values(
                id=key_id, clinic_id=clinic_id, role="admin", prefix="p" * 12, key_hash="h" * 64, created_at=now
            )
        )
        for name, body in bodies.items():
            connection.execute(
                sa.insert(record).values(
                    id=uuid.uuid4(),
                    api_key_id=key_id,
                    key=name,
                    fingerprint="0" * 64,
                    status_code=201,
                    response_body=json.dumps(body),
                    created_at=now,
                )
            )

    command.upgrade(config, WITHHOLDING_REVISION)

    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT key, response_body, secret_withheld FROM idempotency_record"))
        stored = {key: (json.loads(body), bool(withheld)) for key, body, withheld in rows}
    engine.dispose()
    assert stored["api-key"] == ({k: v for k, v in bodies["api-key"].items() if k != "key"}, True)
    assert stored["enrolment"] == (
        {k: v for k, v in bodies["enrolment"].items() if k not in {"code", "enrolment_uri"}},
        True,
    )
    assert stored["patient"] == (bodies["patient"], False)
    command.upgrade(config, "head")
