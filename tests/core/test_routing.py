"""A sync handler's write transaction ends (audit, commit) in the handler's own thread, right after it returns."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.clinical import recording
from app.core.deps import WriteQueue, end_request_transactions, end_transaction, get_db
from app.core.errors import Busy
from app.core.loop_db import runs_on_loop
from app.core.routing import bounded_write, ends_transaction
from app.main import create_app
from tests.conftest import ISSUE_PHQ9, ClinicKeys, make_settings


class FakeEnding:
    def __init__(self, writes: bool = True) -> None:
        self.writes = writes
        self.done = False
        self.thread: int | None = None
        self.status_code: int | None = None

    def __call__(self, status_code: int = 200, _location: str | None = None) -> None:
        self.done = True
        self.thread = threading.get_ident()
        self.status_code = status_code


def session_with(ending: Any) -> Session:
    session = Session()
    session.info["request_transaction_ending"] = ending
    return session


def test_a_wrapped_handler_ends_its_write_transaction_in_its_own_thread_after_returning(monkeypatch: Any) -> None:
    import app.core.deps as deps

    monkeypatch.setattr(deps, "_Ending", FakeEnding)
    ending = FakeEnding()
    seen_done_inside: list[bool] = []

    def handler(session: Session, other: int) -> str:
        seen_done_inside.append(ending.done)
        return "ok"

    wrapped = ends_transaction(handler)
    assert wrapped(session=session_with(ending), other=1) == "ok"
    assert seen_done_inside == [False]
    assert ending.done
    assert ending.thread == threading.get_ident()
    assert ends_transaction(wrapped) is wrapped


def test_a_handler_ends_its_transaction_with_the_status_it_answers_with(monkeypatch: Any) -> None:
    import app.core.deps as deps

    monkeypatch.setattr(deps, "_Ending", FakeEnding)
    created, answered = FakeEnding(), FakeEnding()

    def create(session: Session) -> str:
        return "a model, sent with the route's status"

    def answer(session: Session) -> Response:
        return Response(status_code=200)

    ends_transaction(create, 201)(session=session_with(created))
    ends_transaction(answer, 201)(session=session_with(answered))
    assert (created.status_code, answered.status_code) == (201, 200)


def test_a_failing_handler_leaves_the_transaction_to_be_rolled_back(monkeypatch: Any) -> None:
    import app.core.deps as deps

    monkeypatch.setattr(deps, "_Ending", FakeEnding)
    ending = FakeEnding()

    def handler(session: Session) -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        ends_transaction(handler)(session=session_with(ending))
    assert not ending.done


def test_reads_and_async_handlers_are_left_to_the_route(monkeypatch: Any) -> None:
    import app.core.deps as deps

    monkeypatch.setattr(deps, "_Ending", FakeEnding)
    read = FakeEnding(writes=False)
    end_transaction(session_with(read))
    end_transaction("not a session")
    assert not read.done

    async def handler() -> None:
        return None

    assert ends_transaction(handler) is handler


@asynccontextmanager
async def turn(queue: WriteQueue) -> AsyncIterator[None]:
    give_back = await queue.take_turn()
    try:
        yield
    finally:
        if give_back is not None:
            give_back()


def test_write_requests_take_turns_as_many_at_a_time_as_there_are_writers() -> None:
    async def scenario(queue: WriteQueue) -> int:
        inside = 0
        most = 0

        async def request() -> None:
            nonlocal inside, most
            async with turn(queue):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(request() for _ in range(5)))
        return most

    assert asyncio.run(scenario(WriteQueue(writers=1))) == 1
    assert asyncio.run(scenario(WriteQueue(writers=3))) == 3
    assert asyncio.run(scenario(WriteQueue(writers=None))) == 5


def test_a_writer_that_waits_too_long_is_told_the_service_is_busy() -> None:
    async def scenario() -> None:
        queue = WriteQueue(writers=1, wait_seconds=0.05)
        async with turn(queue):
            with pytest.raises(Busy, match="retry"):
                async with turn(queue):
                    pass  # pragma: no cover - never reached
        async with turn(queue):  # the turn was given back after the refusal
            pass

    asyncio.run(scenario())


class RecordedEnding(FakeEnding):
    """An opened request transaction: what ended it, in which order, and whether its writer's turn came back."""

    def __init__(self, log: list[str], name: str, writes: bool = False) -> None:
        super().__init__(writes)
        self.log = log
        self.name = name
        self.session = self
        self.info: dict[str, Any] = {}
        self.turn_given_back = False
        self.give_back_turn = self._give_back

    def __call__(self, status_code: int = 200, location: str | None = None) -> None:
        super().__call__(status_code, location)
        self.log.append(f"commit {self.name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")

    def _give_back(self) -> None:
        self.turn_given_back = True


def test_the_route_commits_what_is_left_last_opened_first_and_gives_the_turn_back() -> None:
    log: list[str] = []
    read, record = RecordedEnding(log, "read"), RecordedEnding(log, "record", writes=True)
    record.done = True  # ended in the handler's thread
    scope: dict[str, Any] = {"app.open_transactions": [read, record]}
    asyncio.run(end_request_transactions(scope, failed=False))
    assert log == ["commit read", "close record", "close read"]
    assert read.turn_given_back
    assert record.turn_given_back
    assert "app.open_transactions" not in scope


def test_a_failed_request_rolls_back_everything_it_opened() -> None:
    log: list[str] = []
    first, second = RecordedEnding(log, "first", writes=True), RecordedEnding(log, "second")
    asyncio.run(end_request_transactions({"app.open_transactions": [first, second]}, failed=True))
    assert log == ["close second", "close first"]
    assert not first.thread
    assert not second.thread
    assert first.turn_given_back
    assert second.turn_given_back


def test_a_session_is_refused_to_a_route_that_would_not_end_it() -> None:
    app = FastAPI()
    app.state.write_queue = WriteQueue(writers=1, wait_seconds=0.5)
    app.state.read_only_routes = frozenset()
    app.state.transaction_observer = None
    app.state.write_sessions = app.state.read_sessions = sessionmaker()
    app.state.loop_write_sessions = None

    def plain(session: Annotated[Session, Depends(get_db)]) -> None:  # pragma: no cover - never reached
        return None

    app.router.routes.append(APIRoute("/plain", plain, methods=["POST"]))
    with TestClient(app) as client:
        for _ in range(2):  # the writer's turn was given back: the second request is refused the same way, not Busy
            with pytest.raises(RuntimeError, match="use AppRoute"):
                client.post("/plain")


def test_sqlite_has_one_writer_and_a_server_database_the_configured_number(database_url: str) -> None:
    queue = create_app(make_settings(database_url, db_write_concurrency=7)).state.write_queue
    assert queue.writers == (1 if database_url.startswith("sqlite") else 7)
    unlimited = create_app(make_settings(database_url, db_write_concurrency=0)).state.write_queue
    assert unlimited.writers == (1 if database_url.startswith("sqlite") else None)


def test_objects_alive_at_startup_are_exempted_from_the_garbage_collector(database_url: str) -> None:
    gc.unfreeze()
    with TestClient(create_app(make_settings(database_url))):
        assert gc.get_freeze_count() > 0
    gc.unfreeze()


def test_a_bounded_write_runs_on_the_event_loop_while_it_holds_sqlites_single_writer(monkeypatch: Any) -> None:
    import app.core.deps as deps

    class Holding(FakeEnding):
        def __init__(self, single_writer: bool) -> None:
            super().__init__(writes=True)
            self.give_back_turn = lambda: None
            self.single_writer = single_writer

    monkeypatch.setattr(deps, "_Ending", Holding)
    threads: list[int] = []

    @bounded_write
    def handler(session: Session) -> str:
        threads.append(threading.get_ident())
        return "stored"

    wrapped = ends_transaction(handler)

    async def call(single_writer: bool) -> tuple[str, int]:
        ending = Holding(single_writer)
        result = await wrapped(session=session_with(ending))
        assert ending.done
        assert ending.thread == threads[-1]  # ended in the handler's own thread
        return result, threading.get_ident()

    answer, loop_thread = asyncio.run(call(single_writer=True))
    assert answer == "stored"
    assert threads[-1] == loop_thread
    answer, loop_thread = asyncio.run(call(single_writer=False))
    assert answer == "stored"
    assert threads[-1] != loop_thread  # a server database's write waits on the network: in a thread


def test_an_unmarked_sync_handler_stays_sync_for_fastapis_threadpool() -> None:
    def handler(session: Session) -> None:
        return None

    assert not inspect.iscoroutinefunction(ends_transaction(handler))
    assert inspect.iscoroutinefunction(ends_transaction(bounded_write(handler)))


def test_a_bounded_write_runs_on_the_event_loop_on_either_database(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: Any
) -> None:
    """SQLite: while it holds the single writer. PostgreSQL: its session is a loop session, whose statements await
    the network on the event loop."""
    loop_threads: list[int] = []
    stored_in: list[tuple[int, bool]] = []
    take_turn, record_one = WriteQueue.take_turn, recording.record_one

    async def noting_the_loop(self: WriteQueue) -> Any:
        loop_threads.append(threading.get_ident())
        return await take_turn(self)

    def noting_the_store(session: Session, *args: Any, **kwargs: Any) -> Any:
        stored_in.append((threading.get_ident(), runs_on_loop(session)))
        return record_one(session, *args, **kwargs)

    monkeypatch.setattr(WriteQueue, "take_turn", noting_the_loop)
    monkeypatch.setattr(recording, "record_one", noting_the_store)
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    response = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())

    assert response.status_code == 201, response.text
    on_postgresql = app.state.write_queue.writers != 1
    assert stored_in == [(loop_threads[-1], on_postgresql)]


def test_failed_bounded_writes_give_back_their_connection_and_their_turn(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    loop_sessions = app.state.loop_write_sessions
    in_use = loop_sessions.checked_out if loop_sessions else app.state.write_sessions.kw["bind"].pool.checkedout
    body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00+01:00"}
    for _ in range(6):  # more than the writers' turns: each refusal gave its turn back
        refused = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=other_clinic.headers())
        assert refused.status_code == 404, refused.text
        assert in_use() == 0
    stored = client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=clinic.headers())
    assert stored.status_code == 201, stored.text
    assert in_use() == 0
