"""A request's life (app.core.lifecycle): every check before any write turn, whatever the handler's parameter order;
the handler and the end of its transaction in one thread; bounded reads and writes on the event loop; everything
given back."""

from __future__ import annotations

import gc
import re
import threading
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.clinical import recording
from app.core.db import THREAD_ENGINE
from app.core.lifecycle import WRITE_METHODS, AppRoute, Db, RequestTransaction
from app.core.state import state_of
from app.core.write_turns import WriteTurns
from app.main import create_app
from app.measurements import service as measurements
from app.patients import service as patients
from tests.conftest import ISSUE_PHQ9, ClinicKeys, make_settings

MEASUREMENT = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}


def write_routes(app: FastAPI) -> list[tuple[str, str, AppRoute]]:
    """Every write route of the app, its path filled with made-up ids."""
    found: list[tuple[str, str, AppRoute]] = []
    for context in iter_route_contexts(app.routes):  # through included routers (FastAPI includes them lazily)
        route = context.original_route
        if not isinstance(route, AppRoute):
            continue
        path = PARAMETER.sub(
            lambda m: "phq9" if m.group(1) == "instrument_id" else str(uuid.uuid4()), str(context.path)
        )
        found.extend((method, path, route) for method in sorted((route.methods or set()) & WRITE_METHODS))
    return found


PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


@pytest.fixture
def turns_taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    taken: list[str] = []
    take = WriteTurns.take

    async def noting(self: WriteTurns) -> Any:
        taken.append("turn")
        return await take(self)

    monkeypatch.setattr(WriteTurns, "take", noting)
    return taken


def test_no_request_refused_for_its_credentials_waits_for_a_writer(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, turns_taken: list[str]
) -> None:
    """Every write route: without credentials, with a made-up key, and with a key whose role may not write there
    (a researcher's). The handler's parameter order plays no part: checks run before the handler's turn is taken."""
    refused = []
    routes = write_routes(app)
    for method, path, _route in routes:
        for headers in ({}, {"Authorization": "Bearer co_madeup_0000"}, clinic.headers(Role.RESEARCHER)):
            answer = client.request(method, path, content=b"{}", headers=headers)
            if answer.status_code in (401, 403, 404, 422):
                refused.append((method, path, answer.status_code))
    assert len(routes) > 20
    assert len(refused) >= 2 * len(routes)  # every route refuses the first two; most the researcher too
    assert turns_taken == []


def test_no_invalid_body_waits_for_a_writer(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, turns_taken: list[str]
) -> None:
    """Every write route that takes a body, from a caller allowed to write there, sent a body no route accepts."""
    answers = []
    for method, path, route in write_routes(app):
        if route.body_field is None:
            continue
        answer = client.request(method, path, content=b"[[[", headers=clinic.headers(Role.ADMIN))
        answers.append(answer.status_code)
    assert answers
    assert set(answers) <= {400, 404, 415, 422}, answers
    assert turns_taken == []


def test_a_handler_and_the_end_of_its_transaction_share_one_thread(
    client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, int] = {}
    create, end = patients.create, RequestTransaction.end

    def noting_the_store(db: Session, **kwargs: Any) -> Any:
        threads["handler"] = threading.get_ident()
        return create(db, **kwargs)

    def noting_the_end(self: RequestTransaction, status_code: int, location: str | None) -> None:
        threads["end"] = threading.get_ident()
        threads["status"] = status_code
        end(self, status_code, location)

    monkeypatch.setattr(patients, "create", noting_the_store)
    monkeypatch.setattr(RequestTransaction, "end", noting_the_end)
    answer = client.post("/v1/patients", json={}, headers=clinic.headers())

    assert answer.status_code == 201, answer.text
    assert threads["handler"] == threads["end"]
    assert threads["status"] == 201  # the audit sees the status sent


def test_a_bounded_write_runs_on_the_event_loop_on_either_database(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: while it holds the single writer. PostgreSQL: in its AsyncSession's ``run_sync``, whose statements
    await the network on the event loop through an asyncio driver."""
    loop_threads: list[int] = []
    stored_in: list[tuple[int, bool]] = []
    take, record_one = WriteTurns.take, recording.record_one

    async def noting_the_loop(self: WriteTurns) -> Any:
        loop_threads.append(threading.get_ident())
        return await take(self)

    def noting_the_store(db: Session, *args: Any, **kwargs: Any) -> Any:
        stored_in.append((threading.get_ident(), THREAD_ENGINE in db.info))
        return record_one(db, *args, **kwargs)

    monkeypatch.setattr(WriteTurns, "take", noting_the_loop)
    monkeypatch.setattr(recording, "record_one", noting_the_store)
    answer = client.post(f"/v1/patients/{patient_id}/measurements", json=MEASUREMENT, headers=clinic.headers())

    assert answer.status_code == 201, answer.text
    on_postgresql = state_of(app).database.engine.dialect.name == "postgresql"
    assert stored_in == [(loop_threads[-1], on_postgresql)]


def test_a_bounded_read_runs_on_the_event_loop_on_postgresql_and_in_a_thread_on_sqlite(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: in its AsyncSession's ``run_sync``, as a bounded write. SQLite: in the threadpool, as any read (it
    holds no writer, and other reads go on meanwhile)."""
    loop_threads: list[int] = []
    read_in: list[tuple[int, bool]] = []
    begin, list_current = RequestTransaction.begin, measurements.list_current

    async def noting_the_loop(self: RequestTransaction, turns: WriteTurns) -> None:
        loop_threads.append(threading.get_ident())
        await begin(self, turns)

    def noting_the_read(db: Session, **kwargs: Any) -> Any:
        read_in.append((threading.get_ident(), THREAD_ENGINE in db.info))
        return list_current(db, **kwargs)

    monkeypatch.setattr(RequestTransaction, "begin", noting_the_loop)
    monkeypatch.setattr(measurements, "list_current", noting_the_read)
    answer = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers())

    assert answer.status_code == 200, answer.text
    on_postgresql = state_of(app).database.engine.dialect.name == "postgresql"
    assert read_in == [(loop_threads[-1], True)] if on_postgresql else read_in[0][0] != loop_threads[-1]


def test_failed_writes_give_back_their_connection_and_their_turn(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    database = state_of(app).database
    pools = [database.write_engine.pool] + ([database.loop_writes.sync_engine.pool] if database.loop_writes else [])

    def in_use() -> int:
        return sum(pool.checkedout() for pool in pools)  # type: ignore[attr-defined]

    for _ in range(6):  # more than the writers' turns: each refusal gave its turn back
        refused = client.post(
            f"/v1/patients/{patient_id}/measurements", json=MEASUREMENT, headers=other_clinic.headers()
        )
        assert refused.status_code == 404, refused.text
        assert in_use() == 0
    stored = client.post(f"/v1/patients/{patient_id}/measurements", json=MEASUREMENT, headers=clinic.headers())
    assert stored.status_code == 201, stored.text
    assert in_use() == 0


def test_an_idempotent_route_that_stores_nothing_else_still_replays(client: TestClient, clinic: ClinicKeys) -> None:
    headers = clinic.headers(extra={"Idempotency-Key": f"score-{uuid.uuid4()}"})
    first = client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9}, headers=headers)
    again = client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9}, headers=headers)
    other = client.post("/v1/score/phq9", json={"items": {**ISSUE_PHQ9, "1": 0}}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert other.status_code == 422


def test_a_database_session_is_refused_to_a_route_that_would_not_end_it(database_url: str) -> None:
    app = create_app(make_settings(database_url))

    def plain(db: Db) -> None:  # pragma: no cover - never reached
        return None

    app.router.routes.append(APIRoute("/plain", plain, methods=["POST"]))
    with TestClient(app) as client, pytest.raises(RuntimeError, match="not an AppRoute"):
        client.post("/plain")


def test_objects_alive_at_startup_are_exempted_from_the_garbage_collector(database_url: str) -> None:
    gc.unfreeze()
    with TestClient(create_app(make_settings(database_url))):
        assert gc.get_freeze_count() > 0
    gc.unfreeze()


def test_a_read_is_audited_in_its_own_transaction_on_postgresql_and_after_it_on_sqlite(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    """Where reads do not contend for a single writer, a read's audit event is committed with the read; on SQLite
    it follows in a short write transaction. Either way it is committed before the answer is sent."""
    database = state_of(app).database
    engines = {database.engine, database.write_engine}  # SQLite's writer has an engine of its own
    if database.loop_writes is not None:  # PostgreSQL: the list is a bounded read, on the event loop's engine
        engines.add(database.loop_writes.sync_engine)
    begun: list[str] = []

    def count(_connection: object) -> None:
        begun.append("BEGIN")

    for engine in engines:
        event.listen(engine, "begin", count)
    try:
        answer = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers())
    finally:
        for engine in engines:
            event.remove(engine, "begin", count)

    assert answer.status_code == 200
    assert len(begun) == (2 if database.turns.single_writer else 1)
    with database.read_sessions() as db:
        routes = db.scalars(
            select(AuditEvent.route).where(AuditEvent.clinic_id == clinic.id, AuditEvent.action == "read")
        ).all()
    assert "/v1/patients/{patient_id}/measurements" in routes
