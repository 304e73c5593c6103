"""Loop sessions: bounded writes on PostgreSQL await the network on the event loop, through asyncpg by default."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.core.db import create_db_engine, insert_together, new_record_id, table_of
from app.core.deps import run_in_session
from app.core.loop_db import LoopSessions, loop_url
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


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_an_ingest_is_stored_through_either_loop_driver(database_url: str, driver: str) -> None:
    app = create_app(make_settings(database_url, db_loop_driver=driver))
    assert app.state.loop_write_sessions.driver == driver
    clinic = new_clinic(app)
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    with TestClient(app) as client:
        patient = client.post("/v1/patients", json={}, headers=clinic.headers())
        url = f"/v1/patients/{patient.json()['id']}/measurements"
        stored = client.post(url, json=body, headers=clinic.headers())
        listed = client.get(url, headers=clinic.headers())

    assert stored.status_code == 201, stored.text
    assert stored.json()["scores"]["total"]["value"] == 10
    assert [row["id"] for row in listed.json()["items"]] == [stored.json()["id"]]


@POSTGRESQL_ONLY
def test_each_event_loop_gets_connections_of_its_own(database_url: str) -> None:
    """A pooled asyncpg connection cannot serve another loop: a second loop (as tests and in-process clients run)
    gets its own engine instead of the first loop's connections."""
    settings = make_settings(database_url)
    url = loop_url(make_url(database_url), settings.db_loop_driver)
    assert url is not None
    sessions = LoopSessions(url, settings, thread_engine=create_app(settings).state.engine)

    def select_one(session: Session) -> int:
        with session:
            return int(session.execute(text("SELECT 1")).scalar_one())

    async def one_query() -> int:
        session = sessions()
        return await run_in_session(session, select_one, session)

    assert [asyncio.run(one_query()) for _ in range(2)] == [1, 1]  # two loops, one after the other
    assert sessions.checked_out() == 0
    asyncio.run(sessions.dispose())


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
@pytest.mark.parametrize("count", [1, 3, 51])
def test_rows_inserted_together_on_a_loop_session_are_stored_whole(database_url: str, driver: str, count: int) -> None:
    """A request's audit events go as one multi-row INSERT through either driver (asyncpg's parameters are
    positional), and arrive as given."""
    app = create_app(make_settings(database_url, db_loop_driver=driver))
    clinic = new_clinic(app)
    events = table_of(AuditEvent)
    rows = [audit_row(clinic, new_record_id(), index) for index in range(count)]

    def insert(session: Session) -> None:
        with session, session.begin():
            insert_together(session.connection(), events, rows)

    async def on_the_loop() -> None:
        session = app.state.loop_write_sessions()
        await run_in_session(session, insert, session)

    with TestClient(app):
        asyncio.run(on_the_loop())
        with app.state.read_sessions() as session:
            stored = session.execute(select(events).where(events.c.id.in_([row["id"] for row in rows]))).mappings()
            found = {row["id"]: dict(row) for row in stored}
    assert found == {row["id"]: {**row, "occurred_at": row["occurred_at"].astimezone(UTC)} for row in rows}


@POSTGRESQL_ONLY
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_every_connection_reads_times_in_utc_whatever_the_databases_zone(database_url: str, driver: str) -> None:
    """A stored 9999-12-31T23:59:59Z read in a zone east of UTC would be year 10000: no datetime holds it."""
    with FreshPostgresDatabase() as url:
        with psycopg.connect(make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")) as admin:
            admin.execute(f"ALTER DATABASE \"{make_url(url).database}\" SET timezone TO 'Pacific/Kiritimati'")
        settings = make_settings(url, db_loop_driver=driver)
        loop_address = loop_url(make_url(url), driver)
        assert loop_address is not None
        engine = create_db_engine(settings)
        sessions = LoopSessions(loop_address, settings, thread_engine=engine)
        last_moment = "SELECT current_setting('TimeZone'), TIMESTAMPTZ '9999-12-31 23:59:59+00'"

        def read(session: Session) -> tuple[str, datetime]:
            with session:
                zone, moment = session.execute(text(last_moment)).one()
                return str(zone), moment

        async def on_the_loop() -> tuple[str, datetime]:
            session = sessions()
            return await run_in_session(session, read, session)

        with Session(engine) as session:
            in_thread = read(session)
        on_loop = asyncio.run(on_the_loop())
        engine.dispose()

    assert in_thread == on_loop == ("UTC", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
