"""SQLite's bounded writes that reach the writer in one pass of the event loop share one transaction and one commit
(app.core.commit_groups): each in a savepoint of its own, each answering only after the shared commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.core.commit_groups import MOST_MEMBERS, CommitGroups
from app.core.db import create_db_engine, create_write_engine, transaction
from app.core.errors import Busy, NotFound
from app.core.lifecycle import Kind, RequestTransaction
from app.core.state import state_of
from app.core.write_turns import WriteTurns
from app.measurements.models import Measurement
from tests.conftest import ISSUE_PHQ9, ClinicKeys, make_settings


class Store:
    """A SQLite file with a ``note`` table, its write engine, and the commits made on it."""

    def __init__(self, path: Path) -> None:
        self.path = path / "notes.db"
        settings = make_settings(f"sqlite:///{self.path}", sqlite_busy_timeout_ms=50)
        self.read_engine = create_db_engine(settings)
        self.engine: Engine = create_write_engine(settings, self.read_engine)
        with self.engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            connection.exec_driver_sql(
                "CREATE TABLE reply (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL"
                " REFERENCES note (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        self.commits = 0
        event.listen(self.engine, "commit", self._count)
        self.turns = WriteTurns(writers=1, wait_seconds=1)
        self.groups = CommitGroups(self.engine, self.turns)
        self.sessions = sessionmaker(expire_on_commit=False, autoflush=False, join_transaction_mode="rollback_only")

    def _count(self, _connection: object) -> None:
        self.commits += 1

    def notes(self) -> list[str]:
        with self.read_engine.connect() as connection:
            return [row.body for row in connection.execute(text("SELECT body FROM note ORDER BY id"))]

    def transaction(self) -> RequestTransaction:
        return RequestTransaction(
            Kind.BOUNDED_WRITE,
            self.sessions(),
            async_db=None,
            observer=None,
            audit_sessions=sessionmaker(self.engine),
            audit_sessions_single_writer=True,
            commit_groups=self.groups,
        )

    async def write(self, work: Callable[[Session], None], *, before: Awaitable[None] | None = None) -> None:
        """One bounded write as ``app.core.lifecycle.serve`` runs it: begin, the work inline, end, wait for the
        commit, close."""
        transaction = self.transaction()
        try:
            await transaction.begin(self.turns)
            if before is not None:
                await before
            work(transaction.db)
            transaction.end(201, None)
            await transaction.committed()
        finally:
            await transaction.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    found = Store(tmp_path)
    yield found
    found.engine.dispose()
    found.read_engine.dispose()


def note(body: str) -> Callable[[Session], None]:
    def work(db: Session) -> None:
        db.execute(text("INSERT INTO note (body) VALUES (:body)"), {"body": body})

    return work


def test_writes_that_reach_the_writer_in_one_pass_share_one_commit(store: Store) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(store.write(note(f"note {n}")) for n in range(3)))

    asyncio.run(scenario())

    assert store.notes() == ["note 0", "note 1", "note 2"]
    assert store.commits == 1


def test_no_member_answers_before_the_shared_commit(store: Store) -> None:
    seen_while_writing: list[list[str]] = []

    def look_then_note(db: Session) -> None:
        seen_while_writing.append(store.notes())  # another connection: nothing of the group is committed yet
        note("second")(db)

    async def scenario() -> None:
        await asyncio.gather(store.write(note("first")), store.write(look_then_note))

    asyncio.run(scenario())

    assert seen_while_writing == [[]]
    assert store.notes() == ["first", "second"]


def test_a_member_that_fails_is_rolled_back_alone(store: Store) -> None:
    def note_then_refuse(db: Session) -> None:
        note("refused")(db)
        raise NotFound("no such patient")

    async def scenario() -> list[BaseException | None]:
        outcomes = await asyncio.gather(
            store.write(note("before")),
            store.write(note_then_refuse),
            store.write(note("after")),
            return_exceptions=True,
        )
        return list(outcomes)

    outcomes = asyncio.run(scenario())

    assert [type(outcome) for outcome in outcomes] == [type(None), NotFound, type(None)]
    assert store.notes() == ["before", "after"]
    assert store.commits == 1


def test_a_member_whose_session_rolled_back_the_transaction_fails_the_whole_group(store: Store) -> None:
    """The ORM rolls back a joined transaction when a flush fails outside a nested one: the others' work is gone, so
    none of them may answer that it was stored."""

    def note_then_roll_back(db: Session) -> None:
        note("rolled back")(db)
        db.rollback()
        raise RuntimeError("a failed flush")

    async def scenario() -> list[BaseException | None]:
        outcomes = await asyncio.gather(
            store.write(note("lost")), store.write(note_then_roll_back), return_exceptions=True
        )
        await store.write(note("next group"))
        return list(outcomes)

    first, second = asyncio.run(scenario())

    assert isinstance(first, Busy)
    assert "nothing was stored" in str(first)
    assert isinstance(second, RuntimeError)
    assert store.notes() == ["next group"]


def test_a_failed_commit_fails_every_member_and_gives_the_turn_back(store: Store) -> None:
    def orphan_reply(db: Session) -> None:
        db.execute(text("INSERT INTO reply (note_id) VALUES (999)"))  # the deferred key fails at COMMIT

    async def scenario() -> list[BaseException | None]:
        outcomes = await asyncio.gather(store.write(note("lost")), store.write(orphan_reply), return_exceptions=True)
        await store.write(note("next group"))
        return list(outcomes)

    outcomes = asyncio.run(scenario())

    assert all(isinstance(outcome, Exception) and "FOREIGN KEY" in str(outcome) for outcome in outcomes)
    assert store.notes() == ["next group"]


def test_a_write_arriving_while_a_member_still_runs_waits_for_the_next_group(store: Store) -> None:
    """Members never overlap, so one savepoint name serves them all: a write that finds a member still running
    takes the next turn instead of joining."""
    order: list[str] = []

    def noting(body: str) -> Callable[[Session], None]:
        def work(db: Session) -> None:
            order.append(body)
            note(body)(db)

        return work

    async def slow() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def scenario() -> None:
        await asyncio.gather(store.write(noting("slow"), before=slow()), store.write(noting("waiting")))

    asyncio.run(scenario())

    assert order == ["slow", "waiting"]
    assert store.notes() == ["slow", "waiting"]
    assert store.commits == 2


def test_a_group_that_cannot_begin_gives_back_its_connection_and_its_turn(store: Store) -> None:
    """Another process holding SQLite's write lock past the busy timeout: the write fails, and the next one, once the
    lock is released, finds the writer's connection and turn free."""
    other_process = sqlite3.connect(store.path, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")

    async def blocked() -> None:
        await store.write(note("blocked"))

    with pytest.raises(OperationalError, match="locked"):
        asyncio.run(blocked())
    other_process.execute("ROLLBACK")
    other_process.close()
    asyncio.run(store.write(note("after")))

    assert store.notes() == ["after"]
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_group_admits_a_bounded_number_of_members(store: Store) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(store.write(note(f"note {n}")) for n in range(MOST_MEMBERS + 1)))

    asyncio.run(scenario())

    assert len(store.notes()) == MOST_MEMBERS + 1
    assert store.commits == 2


def test_a_thread_writer_queued_behind_a_group_gets_the_turn_once_it_commits(store: Store) -> None:
    async def scenario() -> list[str]:
        async def thread_writer() -> None:
            give_back = await store.turns.take()
            try:
                seen.append(",".join(store.notes()))
            finally:
                assert give_back is not None
                give_back()

        seen: list[str] = []
        await asyncio.gather(store.write(note("grouped")), thread_writer(), store.write(note("grouped too")))
        return seen

    assert asyncio.run(scenario()) == ["grouped,grouped too"]


def test_only_sqlite_groups_its_commits(app: FastAPI) -> None:
    database = state_of(app).database
    assert (database.commit_groups is not None) == (database.engine.dialect.name == "sqlite")


def test_concurrent_ingests_each_answer_for_their_own_write_and_are_each_audited(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    """On SQLite they share commits whenever they reach the writer together; a refused one (another clinic's
    patient) stores nothing and takes nobody else's write with it."""

    def ingest(n: int) -> int:
        caller = other_clinic if n % 3 == 2 else clinic
        body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": f"2026-11-{1 + n:02d}T09:30:00+01:00"}
        return client.post(f"/v1/patients/{patient_id}/measurements", json=body, headers=caller.headers()).status_code

    with ThreadPoolExecutor(8) as threads:
        statuses = list(threads.map(ingest, range(24)))

    assert statuses == [404 if n % 3 == 2 else 201 for n in range(24)]
    for db in transaction(state_of(app).read_sessions):
        stored = db.scalar(select(func.count()).select_from(Measurement).where(Measurement.clinic_id == clinic.id))
        audited = db.execute(
            select(AuditEvent.resource_type, AuditEvent.status_code, func.count())
            .where(AuditEvent.route == "/v1/patients/{patient_id}/measurements", AuditEvent.method == "POST")
            .where(AuditEvent.clinic_id.in_([clinic.id, other_clinic.id]))
            .group_by(AuditEvent.resource_type, AuditEvent.status_code)
        ).all()
    assert stored == 16
    assert sorted(tuple(row) for row in audited) == [
        ("measurement", 201, 16),  # what each stored ingest created
        ("patients", 201, 16),  # each answer
        ("patients", 404, 8),
        ("risk_alert", 201, 16),
    ]
