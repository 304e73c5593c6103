"""The app's state: made by its lifespan; on PostgreSQL the bounded writes' asyncio engine, through asyncpg by
default."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.core.db import insert_together, new_record_id, table_of
from app.core.state import Database, loop_url, state_of
from app.main import create_app
from tests.conftest import ISSUE_PHQ9, POSTGRESQL_ONLY, FreshPostgresDatabase, make_settings, new_clinic
from tests.core.rows import audit_row

PSYCOPG = "postgresql+psycopg://outcomes:secret@db.example:5432/outcomes"


def test_a_psycopg_url_becomes_asyncpgs_with_sslmode_as_ssl() -> None:
    assert loop_url(make_url(PSYCOPG), "asyncpg") == make_url(
        "postgresql+asyncpg://outcomes:secret@db.example:5432/outcomes"
    )
    with_tls = loop_url(make_url(PSYCOPG + "?sslmode=verify-full"), "asyncpg")
    assert with_tls is not None
    assert (with_tls.drivername, dict(with_tls.query)) == ("postgresql+asyncpg", {"ssl": "verify-full"})


def test_psycopg_stays_when_asked_for_or_when_the_url_has_options_only_psycopg_takes() -> None:
    assert loop_url(make_url(PSYCOPG), "psycopg") == make_url(PSYCOPG)
    with_options = make_url(PSYCOPG + "?sslmode=require&application_name=outcomes")
    assert loop_url(with_options, "asyncpg") == with_options


def test_sqlite_needs_no_loop_sessions() -> None:
    assert loop_url(make_url("sqlite:///var/outcomes.db"), "asyncpg") is None


def test_the_state_exists_while_the_app_serves_and_is_closed_after(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    with pytest.raises(RuntimeError, match="has not started"):
        state_of(app)
    with TestClient(app), TestClient(app):  # two clients of one app share its state
        state = state_of(app)
        assert state.database.engine.dialect.name == make_url(database_url).get_backend_name()
    with pytest.raises(RuntimeError, match="has not started"):
        state_of(app)


def test_sqlite_has_one_writer_and_a_server_database_the_configured_number(database_url: str) -> None:
    sqlite = database_url.startswith("sqlite")
    configured = Database.open(make_settings(database_url, db_write_concurrency=7))
    unlimited = Database.open(make_settings(database_url, db_write_concurrency=0))
    assert configured.turns.writers == (1 if sqlite else 7)
    assert unlimited.turns.writers == (1 if sqlite else None)
    for database in (configured, unlimited):
        asyncio.run(database.close())


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_an_ingest_is_stored_through_either_loop_driver(database_url: str, driver: str) -> None:
    app = create_app(make_settings(database_url, db_loop_driver=driver))
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    with TestClient(app) as client:
        loop_writes = state_of(app).database.loop_writes
        assert loop_writes is not None
        assert loop_writes.dialect.driver == driver
        clinic = new_clinic(app)
        patient = client.post("/v1/patients", json={}, headers=clinic.headers())
        url = f"/v1/patients/{patient.json()['id']}/measurements"
        stored = client.post(url, json=body, headers=clinic.headers())
        listed = client.get(url, headers=clinic.headers())

    assert stored.status_code == 201, stored.text
    assert stored.json()["scores"]["total"]["value"] == 10
    assert [row["id"] for row in listed.json()["items"]] == [stored.json()["id"]]


def _served(app: FastAPI) -> Database:
    return state_of(app).database


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
@pytest.mark.parametrize("count", [1, 3, 51])
def test_rows_inserted_together_on_a_loop_session_are_stored_whole(database_url: str, driver: str, count: int) -> None:
    """A request's audit events go as one INSERT through either driver (asyncpg's parameters are positional), and
    arrive as given."""
    events = table_of(AuditEvent)

    async def insert_on_the_loop(database: Database, rows: list[dict[str, object]]) -> None:
        database.serve_on_this_loop(make_settings(database_url, db_loop_driver=driver))
        assert database.loop_writes is not None
        async with AsyncSession(database.loop_writes) as async_db, async_db.begin():
            await async_db.run_sync(lambda db: insert_together(db.connection(), events, rows))
        await database.close()

    app = create_app(make_settings(database_url))
    with TestClient(app):
        clinic = new_clinic(app)
        rows = [audit_row(clinic, new_record_id(), index) for index in range(count)]
        asyncio.run(insert_on_the_loop(Database.open(make_settings(database_url)), rows))
        with _served(app).read_sessions() as db:
            stored = db.execute(select(events).where(events.c.id.in_([row["id"] for row in rows]))).mappings()
            found = {row["id"]: dict(row) for row in stored}
    assert found == {row["id"]: {**row, "occurred_at": row["occurred_at"].astimezone(UTC)} for row in rows}


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_every_connection_reads_times_in_utc_whatever_the_databases_zone(database_url: str, driver: str) -> None:
    """A stored 9999-12-31T23:59:59Z read in a zone east of UTC would be year 10000: no datetime holds it."""
    last_moment = "SELECT current_setting('TimeZone'), TIMESTAMPTZ '9999-12-31 23:59:59+00'"

    def read(db: Session) -> tuple[str, datetime]:
        zone, moment = db.execute(text(last_moment)).one()
        return str(zone), moment

    async def on_the_loop(database: Database) -> tuple[str, datetime]:
        database.serve_on_this_loop(make_settings(url, db_loop_driver=driver))
        assert database.loop_writes is not None
        async with AsyncSession(database.loop_writes) as async_db:
            found = await async_db.run_sync(read)
        await database.close()
        return found

    with FreshPostgresDatabase() as url:
        with psycopg.connect(make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")) as admin:
            admin.execute(f"ALTER DATABASE \"{make_url(url).database}\" SET timezone TO 'Pacific/Kiritimati'")
        database = Database.open(make_settings(url))
        with database.read_sessions() as db:
            in_thread = read(db)
        on_loop = asyncio.run(on_the_loop(database))

    assert in_thread == on_loop == ("UTC", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))


@POSTGRESQL_ONLY
def test_loop_sessions_wait_for_the_loop_pools_connections_and_never_open_more(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More bounded reads at once than the loop pool holds: the others wait their turn, so the loop never opens a
    connection beyond its pool (one it would close again when given back), and every slot is given back."""
    from app.measurements import service as measurements

    list_current = measurements.list_current
    most: list[int] = [0]

    def slow_read(db: Session, **kwargs: object) -> object:
        """Holds its connection until two reads have held one at once (awaiting the network on the loop meanwhile,
        so the other requests run): the overlap is certain, not left to the scheduler."""
        deadline = time.monotonic() + 120  # only so that a broken pool fails instead of hanging
        while most[0] < 2 and time.monotonic() < deadline:
            db.execute(text("SELECT pg_sleep(0.01)"))
        return list_current(db, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(measurements, "list_current", slow_read)
    app = create_app(make_settings(database_url, db_pool_size=2))
    with TestClient(app) as client:
        database = state_of(app).database
        assert database.loop_writes is not None
        pool = database.loop_writes.sync_engine.pool

        @event.listens_for(pool, "checkout")
        def _counted(*_args: object) -> None:
            most[0] = max(most[0], pool.checkedout())  # type: ignore[attr-defined]

        clinic = new_clinic(app)
        patient = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
        url = f"/v1/patients/{patient}/measurements"
        with ThreadPoolExecutor(8) as threads:
            answers = list(threads.map(lambda _: client.get(url, headers=clinic.headers()), range(16)))

        assert [answer.status_code for answer in answers] == [200] * 16
        assert most[0] == 2  # they overlapped, and no more than the pool's two at once
        assert pool.overflow() <= 0  # type: ignore[attr-defined]
        assert database.loop_slots is not None
        assert database.loop_slots._value == 2  # every slot given back
