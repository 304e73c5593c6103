"""The default research export (de-identified, long layout, score level) formatted by PostgreSQL itself.

The Python path (``export.export_rows``) reads one measurement at a time and builds a row per score; that per-row
Python costs as much as reading the rows. On PostgreSQL the same rows are made by the database instead: the scores
are exploded with ``jsonb_each`` (declined and missed occasions, ``export.occasion_query``, are joined to their
instrument's score keys and merged in by time), each patient's pseudonym is joined in (computed here first, once per
patient, and sent as COPY data into a temporary table: the secret never reaches the database), and ``COPY ... TO
STDOUT (FORMAT csv)`` streams the rows as CSV. Parquet is read from the same stream by Arrow's CSV reader, so no
Python touches a row in either format.

The output is the Python path's, byte for byte (CSV) and value for value (Parquet); ``tests/research`` compares the
two on both paths' tricky cases. What the database must do to match it:

- score order: the definition's score keys first, then any other stored key in stored (``jsonb``) order, which is
  the order the Python path sees after decoding; JSON-null scores are left out;
- numbers: the stored JSON text, except where Python prints the decoded float differently (``_value_text``);
- an empty string is written as an empty field in CSV (PostgreSQL would quote it), and kept as an empty string, not
  a null, in Parquet;
- a CSV text cell that would start a formula gets a leading ``'`` (``writers.neutralise``), done here in SQL
  (``_neutralised``); a JSON number is a number and never touched. PostgreSQL quotes a cell holding a delimiter,
  quote, line feed or carriage return, as the Python path does.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from app.care.windows import DECLINED
from app.measurements.models import Measurement
from app.patients.models import Patient
from app.research.export import ExportSpec, measurement_query, occasion_query
from app.research.missing import Missing
from app.research.schemas import Layout, Level
from app.research.variables import band_codes
from app.research.writers import FORMULA_GUARD, FORMULA_STARTS, PARQUET_ROW_GROUP, DrainedSink, arrow_schema

CSV_FLUSH_BYTES = 256 * 1024
"""Bytes per chunk sent (PostgreSQL sends one message per row; a chunk gathers a few thousand)."""
ARROW_BLOCK_BYTES = 1 << 20
"""CSV bytes Arrow parses at a time (its memory use is a few blocks, whatever the export's size)."""

_SCORES = """unnest(%(export_instruments)s::text[], %(export_score_keys)s::text[], %(export_positions)s::integer[],
                     %(export_banded)s::boolean[], %(export_versions)s::text[])
            AS k(instrument_id, key, position, banded, version)"""
"""Every score each selected definition lists (``_score_positions``), as a table."""
_PSEUDONYMS = "research_export_pseudonym"
"""The export's temporary table of pseudonyms (one per connection, dropped at the end of the transaction)."""
_PYTHON_INTEGERS = "-9223372036854775808 AND 18446744073709551615"
"""JSON integers decoded as Python ``int`` (orjson's range); a larger one is decoded as a ``float``."""


def applies(db: Session, spec: ExportSpec) -> bool:
    """Only the de-identified long score export on PostgreSQL; every other export keeps the Python path."""
    return (
        db.get_bind().dialect.name == "postgresql"
        and not spec.identified
        and spec.layout is Layout.LONG
        and spec.level is Level.SCORES
    )


def csv_chunks(db: Session, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str]) -> Iterator[bytes]:
    """The header line, then PostgreSQL's CSV in chunks of about ``CSV_FLUSH_BYTES``."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([column.name for column in spec.columns])
    pending = bytearray(header.getvalue().encode())
    for data in _copy(db, spec, pseudonymise, for_csv=True):
        pending += data
        if len(pending) >= CSV_FLUSH_BYTES:
            yield bytes(pending)
            pending.clear()
    yield bytes(pending)


def parquet_chunks(
    db: Session,
    spec: ExportSpec,
    pseudonymise: Callable[[uuid.UUID], str],
    *,
    row_group: int = PARQUET_ROW_GROUP,
) -> Iterator[bytes]:
    """The Parquet file in row groups of ``row_group`` rows (as the Python path writes them), each sent when written."""
    schema = arrow_schema(spec.columns)
    sink = DrainedSink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema)
    for table in _row_groups(_parsed(_copy(db, spec, pseudonymise, for_csv=False), schema), row_group):
        writer.write_table(pa.Table.from_arrays(table.columns, schema=schema))
        yield sink.drain()
    writer.close()
    yield sink.drain()


def _parsed(blocks: Iterator[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """PostgreSQL's CSV parsed by Arrow as it arrives: a NULL (unquoted empty field) is missing, ``""`` is ``''``."""
    first = next(blocks, b"")
    if not first:
        return  # Arrow refuses an empty CSV stream
    reader = pa_csv.open_csv(
        _CopyStream(itertools.chain([first], blocks)),
        # Parsed in this thread: Arrow's readahead thread would read the COPY stream behind the generator's back.
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=ARROW_BLOCK_BYTES, use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={field.name: field.type for field in schema},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    with reader:
        yield from reader


def _row_groups(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """The batches regrouped into tables of ``size`` rows, the last one smaller."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            pending = table.slice(size).to_batches()
            pending_rows -= size
    if pending_rows:
        yield pa.Table.from_batches(pending)


class _CopyStream(io.RawIOBase):
    """A read-only file over the COPY stream, for Arrow's streaming CSV reader."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not self._left:
                self._left = next(self._blocks, b"")
                if not self._left:
                    break
            taken = self._left[: len(view) - filled]
            view[filled : filled + len(taken)] = taken
            filled += len(taken)
            self._left = self._left[len(taken) :]
        return filled


def _copy(db: Session, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str], *, for_csv: bool) -> Iterator[bytes]:
    """The export's rows as CSV lines, as PostgreSQL sends them (one line per message); ``for_csv``: as the CSV
    export writes them, else as Parquet keeps them (see ``_rows_statement``)."""
    # One snapshot for the clinic's patients and the rows: a patient added in between would otherwise lose its rows.
    # (Set as the export's session first uses its connection, as it does here.)
    connection = db.connection(execution_options={"isolation_level": "REPEATABLE READ"}).connection
    driver = connection.driver_connection
    assert driver is not None  # a checked-out connection
    # The planner cannot know that a measurement holds a few scores (it assumes 100 per ``jsonb_each``), so it
    # expects millions of rows and compiles the query with JIT: ~1 s at start for nothing. COPY sends text in the
    # client encoding, and the export is UTF-8. Both until the transaction ends.
    db.execute(text("SET LOCAL jit = off"))
    db.execute(text("SET LOCAL client_encoding = 'UTF8'"))
    _load_pseudonyms(db, driver, spec, pseudonymise)
    statement, params = _rows_statement(db, spec, for_csv=for_csv)
    with driver.cursor() as cursor, cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)", params) as copy:
        for data in copy:
            yield bytes(data)


def _load_pseudonyms(
    db: Session, driver: psycopg.Connection[Any], spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str]
) -> None:
    """The export's patients (the project's consenting ones) and their pseudonyms, in a temporary table dropped with
    the transaction. The rows' query filters on the same patients (``measurement_query``), in the same snapshot.

    Sent as COPY data, never as statement text: a server that logs slow statements (or ``pg_stat_statements``) would
    otherwise keep the export's key from pseudonym to patient. One HMAC per patient, not per row.
    """
    db.execute(
        text(f"CREATE TEMPORARY TABLE {_PSEUDONYMS} (patient_id uuid NOT NULL, pseudonym text NOT NULL) ON COMMIT DROP")
    )
    query = select(Patient.id).where(Patient.clinic_id == spec.clinic_id)
    if spec.patients is not None:
        query = query.where(Patient.id.in_(spec.patients))
    patients = db.scalars(query)
    with driver.cursor() as cursor, cursor.copy(f"COPY {_PSEUDONYMS} (patient_id, pseudonym) FROM STDIN") as copy:
        for patient in patients:
            copy.write_row((patient, pseudonymise(patient)))
    db.execute(text(f"ANALYZE {_PSEUDONYMS}"))


def _rows_statement(db: Session, spec: ExportSpec, *, for_csv: bool) -> tuple[str, dict[str, Any]]:
    """The long score rows in the Python path's order, as SQL for psycopg (``%(name)s`` parameters).

    With ``for_csv`` every text cell is neutralised (``_neutralised``), and an empty string is sent as NULL, which
    PostgreSQL's CSV writes as an empty field as Python's ``csv`` does (an empty string it would write as ``""``).
    """
    measurements, params = _driver_sql(db, _measurements(spec))
    instruments, keys, positions, banded, versions = _score_positions(spec)
    band_instruments, band_keys, band_labels, band_codes = _band_codes(spec)
    params |= {
        "export_instruments": instruments,
        "export_score_keys": keys,
        "export_positions": positions,
        "export_banded": banded,
        "export_band_instruments": band_instruments,
        "export_band_keys": band_keys,
        "export_band_labels": band_labels,
        "export_band_codes": band_codes,
    }
    value = _value_text("s.value")
    texts = [
        "p.pseudonym",
        "m.instrument_id",
        "m.definition_version",
        "s.key",
        value,
        "CASE WHEN jsonb_typeof(s.value -> 'band') = 'string' AND s.value ->> 'band' <> '' "
        "THEN replace(s.value ->> 'band', '_', ' ') END",
        "array_to_string(ARRAY(SELECT jsonb_array_elements_text(m.flags)), ';')",
    ]
    # A missing value is the unanswered code in CSV and a null in Parquet (``writers``, ``missing``).
    unanswered = f"'{Missing.UNANSWERED.value}'" if for_csv else "NULL"
    if for_csv:
        texts = [_neutralised(expression) for expression in texts]
        # The value column holds numbers: a JSON number is written as it is, anything else is text.
        stored = _neutralised("(s.value ->> 'value')")
        texts[4] = f"CASE WHEN jsonb_typeof(s.value -> 'value') = 'number' THEN {value} ELSE {stored} END"
        texts = [f"NULLIF({expression}, '')" for expression in texts]
    pseudonym, instrument, version, key, value, label, flags = texts
    value_missing = "coalesce(jsonb_typeof(s.value -> 'value'), 'null') = 'null'"
    value = f"CASE WHEN {value_missing} THEN {unanswered} ELSE {value} END"
    band = (
        f"CASE WHEN NOT coalesce(k.banded, false) THEN NULL WHEN b.code IS NOT NULL THEN b.code::text "
        f"WHEN {value_missing} THEN {unanswered} END"
    )
    occasions, occasion_params = _driver_sql(db, occasion_query(spec).order_by(None))
    occasions, occasion_params = _prefixed(occasions, occasion_params, "occasion_")
    params |= occasion_params | {"export_versions": versions}
    # A declined or missed occasion: a row per score of its instrument, the value (and band) coded with the reason.
    reason = (
        f"CASE WHEN o.state = '{DECLINED}' THEN '{Missing.DECLINED.value}' ELSE '{Missing.MISSED.value}' END"
        if for_csv
        else "NULL"
    )
    occasion_texts = ["p.pseudonym", "o.instrument_id", "k.version", "k.key"]
    if for_csv:
        occasion_texts = [f"NULLIF({_neutralised(expression)}, '')" for expression in occasion_texts]
    o_pseudonym, o_instrument, o_version, o_key = occasion_texts
    # Only this module's SQL and SQLAlchemy's compiled queries are put together here; every value is a parameter.
    statement = f"""
        SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11 FROM (
        SELECT {pseudonym} AS c0, m.session_number AS c1, floor(m.days / 7.0)::integer AS c2, m.days AS c3,
               {instrument} AS c4, {version} AS c5, {key} AS c6, {value} AS c7, {band} AS c8, {label} AS c9,
               CASE WHEN coalesce(s.value -> 'prorated', 'null') IN ('null', 'false', '0', '""', '[]', '{{}}')
                    THEN 0 ELSE 1 END AS c10,
               {flags} AS c11,
               m.patient_id AS by_patient, m.measured_at AS by_time, 0 AS by_kind, m.measurement_id AS by_id,
               k.position AS by_position, s.stored_at AS by_stored
        FROM ({measurements}) AS m
        JOIN {_PSEUDONYMS} AS p ON p.patient_id = m.patient_id
        CROSS JOIN LATERAL jsonb_each(m.payload) WITH ORDINALITY AS s(key, value, stored_at)
        LEFT JOIN {_SCORES}
          ON k.instrument_id = m.instrument_id AND k.key = s.key
        LEFT JOIN unnest(%(export_band_instruments)s::text[], %(export_band_keys)s::text[],
                         %(export_band_labels)s::text[], %(export_band_codes)s::integer[])
          AS b(instrument_id, key, label, code)
          ON b.instrument_id = m.instrument_id AND b.key = s.key AND jsonb_typeof(s.value -> 'band') = 'string'
             AND b.label = s.value ->> 'band'
        WHERE jsonb_typeof(s.value) <> 'null'
        UNION ALL
        SELECT {o_pseudonym}, o.session_number, floor(o.days / 7.0)::integer, o.days, {o_instrument}, {o_version},
               {o_key}, {reason}, CASE WHEN k.banded THEN {reason} END, NULL, NULL, NULL,
               o.patient_id, o.at, 1, o.event_id, k.position, 0
        FROM ({occasions}) AS o
        JOIN {_PSEUDONYMS} AS p ON p.patient_id = o.patient_id
        JOIN {_SCORES} ON k.instrument_id = o.instrument_id
        ) AS export_rows
        ORDER BY by_patient, by_time, by_kind, by_id, by_position NULLS LAST, by_stored
    """  # noqa: S608
    return statement, params


_FORMULA_STARTS_SQL = ", ".join("E'" + start.encode("unicode_escape").decode() + "'" for start in FORMULA_STARTS)
"""``writers.FORMULA_STARTS`` as SQL string literals (tab and carriage return escaped as ``E'\\t'``, ``E'\\r'``)."""


def _neutralised(expression: str) -> str:
    """The text ``expression`` as ``writers.neutralise`` writes it: with a leading ``'`` if it would start a formula."""
    return (
        f"CASE WHEN left({expression}, 1) IN ({_FORMULA_STARTS_SQL}) THEN '{FORMULA_GUARD * 2}' || ({expression}) "
        f"ELSE {expression} END"
    )


def _measurements(spec: ExportSpec) -> Select[Any]:
    """The Python path's measurement query, with the columns that order its rows (the outer query orders them)."""
    return (
        measurement_query(spec)
        .order_by(None)
        .add_columns(Measurement.measured_at.label("measured_at"), Measurement.id.label("measurement_id"))
    )


def _driver_sql(db: Session, query: Select[Any]) -> tuple[str, dict[str, Any]]:
    """The query as psycopg runs it: SQL text and parameters, each passed through its column type's bind processing."""
    dialect = db.get_bind().dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params: dict[str, Any] = {}
    for name, value in compiled.params.items():
        bind = compiled.binds.get(name)
        process = bind.type.dialect_impl(dialect).bind_processor(dialect) if bind is not None else None
        params[name] = process(value) if process is not None else value
    return str(compiled), params


def _score_positions(spec: ExportSpec) -> tuple[list[str], list[str], list[int], list[bool], list[str]]:
    """(instrument, score key, position, whether banded, definition version) of every score each definition lists,
    as parallel arrays."""
    instruments, keys, positions, banded, versions = [], [], [], [], []
    for definition in spec.definitions:
        for position, score in enumerate(definition.scores):
            instruments.append(definition.id)
            keys.append(score.key)
            positions.append(position)
            banded.append(bool(score.bands))
            versions.append(definition.version)
    return instruments, keys, positions, banded, versions


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _prefixed(statement: str, params: dict[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """A compiled query's parameters renamed with ``prefix``, so that two compiled queries can share a statement."""
    return (
        _PLACEHOLDER.sub(lambda match: f"%({prefix}{match.group(1)})s", statement),
        {f"{prefix}{name}": value for name, value in params.items()},
    )


def _band_codes(spec: ExportSpec) -> tuple[list[str], list[str], list[str], list[int]]:
    """(instrument, score key, stored band label, code) of every band (``variables.band_codes``), as arrays."""
    instruments, keys, labels, codes = [], [], [], []
    for definition in spec.definitions:
        for score in definition.scores:
            for label, code in band_codes(score).items():
                instruments.append(definition.id)
                keys.append(score.key)
                labels.append(label)
                codes.append(code)
    return instruments, keys, labels, codes


def _value_text(score: str) -> str:
    """The score's ``value`` as Python prints the decoded JSON: the stored number text, or the float's ``repr``.

    ``jsonb`` keeps a number's digits but never an exponent (``0.00001``). Python prints a decoded float below 1e-4
    or of 1e16 or more with one (``1e-05``), as does PostgreSQL's shortest ``float8`` text; in between, as the
    stored digits without trailing zeros (``1.50`` is ``1.5``, ``3.00`` is ``3.0``). Integers print as stored,
    unless beyond 64 bits (decoded as a float). Stored digits are assumed shortest, as every JSON encoder the
    service has used writes them (``repr``'s digits).
    """
    stored = f"({score} ->> 'value')"
    number = f"{stored}::numeric"
    trimmed = f"rtrim({stored}, '0')"
    return f"""CASE
            WHEN jsonb_typeof({score} -> 'value') <> 'number' THEN {stored}
            WHEN strpos({stored}, '.') = 0 AND {number} BETWEEN {_PYTHON_INTEGERS} THEN {stored}
            WHEN strpos({stored}, '.') = 0 OR {number} <> 0 AND (abs({number}) < 0.0001 OR abs({number}) >= 1e16)
                THEN {number}::float8::text
            WHEN right({stored}, 1) <> '0' THEN {stored}
            WHEN right({trimmed}, 1) = '.' THEN {trimmed} || '0'
            ELSE {trimmed}
        END"""
