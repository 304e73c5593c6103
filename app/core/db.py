"""Engine, sessions and the declarative base.

SQLite is configured for WAL with foreign keys on; write requests open their transaction with ``BEGIN IMMEDIATE``
so concurrent writers queue on the busy timeout instead of failing with "database is locked" on lock upgrade.
"""

from __future__ import annotations

import functools
import io
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
import psycopg
from psycopg.copy import Copy, FileWriter
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Dialect,
    Engine,
    Insert,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator
from uuid_utils.compat import uuid7

from app.core.config import Settings
from app.core.datetimes import CLOCK

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every engine: stored as UTC, always read back aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> uuid.UUID:
    """A random id (UUIDv4) for identities: clinics, keys, patients, sessions. It tells nothing, not even when."""
    return uuid.uuid4()


def new_record_id() -> uuid.UUID:
    """A time-ordered id (UUIDv7, RFC 9562) for the rows written in volume: measurements, their FHIR resources,
    alerts, audit events, idempotency records.

    Each new id sorts after the last, so its index entry lands on the index's last pages. Random ids scatter every
    insert over the whole index: once an index outgrows the cache, a transaction of 1,000 entries rewrites thousands
    of pages, and a Bundle's commit slows as the tables grow (bench/README.md, change 28). The
    id tells when the row was written, which its own columns already say; identities keep ``new_id``.
    """
    return uuid7()


def utcnow() -> datetime:
    """Now, in UTC, from the service's clock (``app.core.datetimes.CLOCK``, which tests set)."""
    return CLOCK.now()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


JSON_CODEC: dict[str, Any] = {
    "json_serializer": _json_dumps,
    "json_deserializer": orjson.loads,
    "hide_parameters": True,
}
"""Options every engine the service creates is given. JSON columns through orjson: scores, items and flags are
encoded on every store and decoded on every read and export row (faster than the standard library's json;
bench/README.md, change 10). ``hide_parameters``: a database error's message (and so a logged traceback) names the
statement but never its bound values, which are patient data."""


def create_db_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    engine = create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow, **JSON_CODEC)
    in_utc(engine)
    ping_when_idle(engine, settings.db_ping_after_idle_seconds)
    return engine


def in_utc(engine: Engine) -> None:
    """Every new PostgreSQL connection works in UTC, whatever the server's or the database's ``TimeZone``.

    Times are stored as ``timestamptz`` and read back as aware datetimes in the session's zone: in a zone east of UTC
    a stored 9999-12-31T23:59:59Z would be year 10000, which no datetime holds, and every read of that row would fail.
    Set once per connection (a ``SET`` outside any transaction, as SQLAlchemy's documented recipe for session
    settings does), not per request; ``options=-c TimeZone=UTC`` would do it without a round trip but PgBouncer
    refuses that startup parameter by default.
    """

    @event.listens_for(engine, "connect", insert=True)
    def _utc(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        dbapi_connection.autocommit = autocommit


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle in the pool for ``idle_seconds`` or more.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, a round trip per request under load (bench/README.md,
    change 7).
    A connection that died while idle (server restart, idle timeout in a proxy) is caught here and replaced, as
    with ``pool_pre_ping``; one that dies while busy fails its statement either way, and SQLAlchemy then
    invalidates the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as dead:  # the driver's own error type: any failure means "do not use this connection"
            raise DisconnectionError("a pooled connection died while idle; replacing it") from dead


_CHECKED_IN_AT = "checked_in_at"


def create_write_engine(settings: Settings, read_engine: Engine) -> Engine:
    """The engine write transactions use.

    SQLite has one writer at a time: a single pooled connection makes writers queue in the pool (first come, first
    served) instead of spinning on the busy timeout, which cuts tail latency several-fold at equal throughput
    (../shared/reference/performance-and-reliability.md §1.5). Other databases share the read engine's pool.
    """
    if read_engine.dialect.name != "sqlite":
        return writer(read_engine)
    timeout = settings.sqlite_busy_timeout_ms / 1000
    return writer(_sqlite_engine(settings, pool_size=1, max_overflow=0, pool_timeout=timeout))


def _sqlite_engine(settings: Settings, *, pool_size: int, max_overflow: int, pool_timeout: float = 30) -> Engine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        **JSON_CODEC,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own transaction handling is bypassed).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine and pool, but transactions take SQLite's write lock at BEGIN (no-op elsewhere)."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def create_lookup_engine(settings: Settings, read_engine: Engine) -> Engine:
    """For single-statement reads outside any transaction (the API-key lookup of every request): no BEGIN and no
    ROLLBACK, which on PostgreSQL are a network round trip each.

    SQLite shares the read pool (its driver is in autocommit mode already; only our BEGIN is left out). A server
    database gets a small pool of its own whose connections stay in autocommit mode, rather than switching a shared
    connection's mode at every checkout and back at every return.
    """
    if read_engine.dialect.name == "sqlite":
        return read_engine.execution_options(sqlite_begin=None)
    engine = create_engine(
        read_engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=LOOKUP_POOL_SIZE,
        max_overflow=settings.db_max_overflow,
        **JSON_CODEC,
    )
    ping_when_idle(engine, settings.db_ping_after_idle_seconds)
    return engine


LOOKUP_POOL_SIZE = 4


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error. Services flush; only this commits."""
    with factory() as db, db.begin():
        yield db


InsertedRow = tuple[str, Mapping[str, Any]]
"""``(table name, column values)`` of a row a session inserted, by flush or by ``insert_rows``."""
_INSERT_LOG = "insert_log"
_SAVEPOINT_MARKS = "insert_log_savepoint_marks"


def log_inserts(db: Session) -> list[InsertedRow]:
    """Record every row this session inserts from now on (the audit trail's hook); returns the live record.

    Rows inserted inside a savepoint that is then rolled back leave the record again, so it lists exactly what the
    transaction will commit (a failed Bundle entry, or a bulk store retried entry by entry, leaves no trace).
    """
    log: list[InsertedRow] = db.info.setdefault(_INSERT_LOG, [])
    return log


def _record(db: Session, rows: Iterable[InsertedRow]) -> None:
    """Add rows to the session's record, if it keeps one, noting where each open savepoint's rows begin in it."""
    log: list[InsertedRow] | None = db.info.get(_INSERT_LOG)
    if log is None:
        return
    savepoint = db.get_nested_transaction()
    if savepoint is not None:
        marks: dict[SessionTransaction, int] = db.info.setdefault(_SAVEPOINT_MARKS, {})
        # The first row of a savepoint is also the first of every savepoint around it that has none yet.
        while savepoint is not None and savepoint not in marks:
            if savepoint.nested:
                marks[savepoint] = len(log)
            savepoint = savepoint.parent
    log.extend(rows)


@event.listens_for(Session, "after_soft_rollback")
def _savepoint_rolled_back(db: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back savepoint's rows (and those of the savepoints inside it) are the end of the record: drop them."""
    mark = db.info.get(_SAVEPOINT_MARKS, {}).pop(previous_transaction, None)
    if mark is not None:
        del db.info[_INSERT_LOG][mark:]


@event.listens_for(Session, "after_flush")
def _report_flushed(db: Session, _context: Any) -> None:
    _record(db, ((row.__tablename__, dict(vars(row))) for row in db.new if hasattr(row, "__tablename__")))


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, typed as one (``__table__`` is typed as any FROM clause)."""
    return cast(Table, model.__table__)


def insert_rows(
    db: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: ColumnElement[Any] | None = None,
) -> list[Any]:
    """Insert plain rows with one Core statement in the session's transaction, and record them (``log_inserts``).

    For the hot paths (ingest, bulk): an ORM add-and-flush costs several times a Core insert of the same row
    (bench/README.md, change 1). The rows do not enter the session's identity map; give every column its value. With
    ``returning``, that expression's value for each row, in the rows' order (one statement still).
    """
    if not rows:
        return []
    table = table_of(model)
    connection = db.connection()
    # One row is sent as one: a list, even of one, is an executemany (on PostgreSQL a pipeline; with RETURNING,
    # SQLAlchemy's machinery for keeping many rows in order), which costs more than the row.
    parameters = rows[0] if len(rows) == 1 else rows
    found: list[Any] = []
    if returning is not None:
        statement = _insert_of(table).returning(returning, sort_by_parameter_order=len(rows) > 1)
        found = list(connection.scalars(statement, parameters))
    elif _copies(connection, table, rows):
        _copy_rows(connection, table, rows)
    elif _binds_itself(connection, table, rows):
        _executemany_bound(connection, table, rows)
    else:
        connection.execute(_insert_of(table), parameters)
    _record(db, ((table.name, row) for row in rows))
    return found


def insert_together(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (every column given) with one statement on ``connection``, without recording them.

    On PostgreSQL an executemany is one statement per row (psycopg pipelines them; asyncpg binds each row in turn);
    for the few rows of a request's audit events one multi-row INSERT, compiled once per row count, costs less client
    CPU on both drivers, and is one statement for the server to run instead of several (bench/README.md, changes 27
    and 32, re-measured for issue 18); many rows (a Bundle's) are copied. SQLite's executemany is a single call
    already.
    """
    if _copies(connection, table, rows):
        _copy_rows(connection, table, rows)
        return
    if _binds_itself(connection, table, rows):
        _executemany_bound(connection, table, rows)
        return
    if len(rows) < 2 or len(rows) > _MULTI_ROW_MOST or connection.dialect.name != "postgresql":
        connection.execute(_insert_of(table), rows[0] if len(rows) == 1 else rows)
        return
    sql, binds = _multi_row_insert(table, len(rows), connection.dialect)
    values = [_bound(rows[index][column], process) for _, column, index, process in binds]
    if connection.dialect.positional:
        connection.exec_driver_sql(sql, tuple(values))
    else:
        connection.exec_driver_sql(sql, {bind[0]: value for bind, value in zip(binds, values, strict=True)})


_MULTI_ROW_MOST = 50
"""More rows than this are copied (psycopg): each row count up to it is a statement compiled (and kept) once."""
_Processed = list[tuple[str, Callable[[Any], Any] | None]]
"""Columns by name, each with how its type binds a value (None: as given)."""
_Bind = tuple[str, str, int, Callable[[Any], Any] | None]
"""A parameter of a multi-row INSERT: its name, the column and row it takes its value from, and the column's bind
processing."""


def _copies(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Copy many rows through sync psycopg (a loop session's asyncio connection has no sync COPY; its writes are
    small) when they give every column (a COPY applies no column default; an executemany does)."""
    return (
        len(rows) > _MULTI_ROW_MOST
        and connection.dialect.driver == "psycopg"
        and not connection.dialect.is_async
        and rows[0].keys() >= set(table.columns.keys())
    )


def _binds_itself(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Many rows for SQLite, every column given: bound here and handed to the driver's executemany."""
    return len(rows) > 1 and connection.dialect.name == "sqlite" and rows[0].keys() >= set(table.columns.keys())


def _executemany_bound(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany whose parameters were bound here, column by column, as the columns' types bind them.

    SQLAlchemy binds each value of each row through its processors in turn; a request's audit rows and a Bundle's
    rows share most values (the request's clinic, key, route, time), so binding a value once per run of the same
    object costs a fraction of that (bench/README.md, change 35). The driver runs the same statement either way; a
    refused row raises the same SQLAlchemy error.
    """
    statement, columns = _positional_insert(table, connection.dialect)
    bound: list[list[Any]] = []
    for name, process in columns:
        if process is None:
            bound.append([row[name] for row in rows])
            continue
        values: list[Any] = []
        last: Any = _UNSET
        value: Any = None
        for row in rows:
            given = row[name]
            if given is not last:
                last, value = given, process(given)
            values.append(value)
        bound.append(values)
    connection.exec_driver_sql(statement, list(zip(*bound, strict=True)))


_UNSET = object()


@functools.lru_cache(maxsize=64)
def _positional_insert(table: Table, dialect: Dialect) -> tuple[str, _Processed]:
    """``INSERT INTO t (every column) VALUES (?, …)`` and each column's bind processing, in the statement's order."""
    names = [column.name for column in table.columns]
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    order = compiled.positiontup or names
    return compiled.string, [(name, _bind_processor(table, name, dialect)) for name in order]


def _copy_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``COPY ... FROM STDIN`` in the connection's transaction, each value bound as the column's type binds it.

    An executemany of a large Bundle's rows was a large part of its time on PostgreSQL: psycopg pipelines one
    statement per row and handles each row's result in Python; a COPY sends the rows as one stream, formatted in C
    (bench/README.md, change 31). A refused row refuses them all, as the executemany did, with the same SQLAlchemy
    error.

    Most columns of a request's rows hold one value (its clinic, key, time, route): those are formatted once and
    written after each row's own values, so Python touches only the values that differ (bench/README.md, change
    41). psycopg formats both parts (``FileWriter``), and every line break in COPY's text is the end of a row (a
    value's own is escaped), which is where the shared part goes.
    """
    first = rows[0]
    shared = tuple(
        column.name
        for column in table.columns
        if not column.primary_key and all(row[column.name] is first[column.name] for row in rows)
    )
    statement, own, common = _copy_of(table, connection.dialect, shared)
    driver_connection = cast(psycopg.Connection[Any], connection.connection.driver_connection)
    try:
        with driver_connection.cursor() as formatting, driver_connection.cursor() as cursor:
            shared_end = b"\t" + _copy_text(formatting, [[_bound(first[name], process) for name, process in common]])
            with cursor.copy(statement) as copy:
                for start in range(0, len(rows), COPY_CHUNK):  # the server stores a chunk while the next is formatted
                    chunk = rows[start : start + COPY_CHUNK]
                    data = _copy_text(
                        formatting, ([_bound(row[name], process) for name, process in own] for row in chunk)
                    )
                    copy.write(data.replace(b"\n", shared_end) if common else data)
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


COPY_CHUNK = 500
"""Rows formatted and sent at a time."""


def _bound(value: Any, process: Callable[[Any], Any] | None) -> Any:
    return value if process is None else process(value)


def _copy_text(cursor: psycopg.Cursor[Any], rows: Iterable[list[Any]]) -> bytes:
    """Rows in COPY's text format, as psycopg formats them for the connection (its dumpers and encoding)."""
    buffer = io.BytesIO()
    with Copy(cursor, writer=FileWriter(buffer)) as copy:
        for row in rows:
            copy.write_row(row)
    return buffer.getvalue()


@functools.lru_cache(maxsize=256)
def _copy_of(table: Table, dialect: Dialect, shared: tuple[str, ...]) -> tuple[str, _Processed, _Processed]:
    """The COPY statement naming each row's own columns, then the ``shared`` ones; how each column binds."""
    preparer = dialect.identifier_preparer
    own = [column.name for column in table.columns if column.name not in shared]
    names = ", ".join(preparer.quote(name) for name in [*own, *shared])
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    return (
        statement,
        [(name, _bind_processor(table, name, dialect)) for name in own],
        [(name, _bind_processor(table, name, dialect)) for name in shared],
    )


@functools.lru_cache(maxsize=64)
def _multi_row_insert(table: Table, count: int, dialect: Dialect) -> tuple[str, list[_Bind]]:
    """``INSERT ... VALUES (...), (...)`` for ``count`` rows as the dialect's driver takes it, with how to turn each
    row's values into its parameters (the columns' own bind processing: JSON encoding, UTC times, UUIDs), in the
    order of the statement's positional parameters (asyncpg), else of its named ones (psycopg)."""
    names = [column.name for column in table.columns]
    statement = insert(table).values(
        [{name: bindparam(f"{name}_{index}", type_=table.c[name].type) for name in names} for index in range(count)]
    )
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup or [f"{name}_{index}" for index in range(count) for name in names]
    binds: list[_Bind] = []
    for parameter in order:
        name, _, index = parameter.rpartition("_")
        binds.append((parameter, name, int(index), _bind_processor(table, name, dialect)))
    return compiled.string, binds


def _bind_processor(table: Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How SQLAlchemy turns the column's Python value into the driver's (JSON encoding, UTC times, UUIDs)."""
    return table.c[column].type.dialect_impl(dialect).bind_processor(dialect)


_INSERTS: dict[str, Insert] = {}


def _insert_of(table: Table) -> Insert:
    """One ``insert(table)`` per table, built once: building it per request cost more than running it."""
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = insert(table)
    return statement


THREAD_ENGINE = "thread_engine"
"""``db.info`` key of the engine that work outside a loop session (in a thread) uses: set on every loop session."""
