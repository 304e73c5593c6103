"""Bulk import of measurements from CSV or NDJSON: validated and scored exactly like single posts, all or nothing.

A record names the patient by ``external_id`` (the clinic's own identifier), the ``instrument``, ``measured_at``
(ISO 8601 with a time zone), optionally ``session_number`` and ``declared_total``, and the answers: in NDJSON an
``items`` object as in ``POST …/measurements``; in CSV one column per item, ``item_1``, ``item_2``, … (an empty cell
is an unanswered item; whole numbers are option values, anything else an option code such as ``2a``).

Every record is checked first (shape, patient, instrument, answers through the scoring engine, duplicates of stored
or earlier measurements); if any is rejected, nothing is stored and the report lists every rejected row with its
field and message. Only then are the records stored, through ``app.clinical.recording`` with source ``import``
(scored once: the score that passed the check is the one stored).
A ``session_number`` that the patient does not have yet creates that session (started at ``measured_at``). Rows are
numbered as lines of the file (the CSV header is line 1).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TextIO

from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clinical import recording
from app.core.errors import FieldError, InvalidInput
from app.core.schemas import ClinicalTime, DeclaredTotal, ItemAnswers, Schema
from app.instruments import service as scoring
from app.instruments.registry import InstrumentRegistry
from app.measurements import service as measurements
from app.measurements.models import Measurement
from app.measurements.schemas import Source
from app.patients import service as patients
from app.patients.models import PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM, PatientCreate
from app.research.schemas import ImportReport, RejectedRow
from app.research.writers import csv_line, neutralised_row
from app.scoring.engine import ScoreResult
from app.therapy_sessions import service as therapy_sessions
from app.therapy_sessions.models import TherapySession
from app.therapy_sessions.schemas import TherapySessionCreate

ImportFormat = Literal["csv", "ndjson"]
Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total) as records are checked and stored."""

ITEM_COLUMN = re.compile(r"^item_([1-9][0-9]*)$")
CSV_FIELDS = ("external_id", "instrument", "measured_at", "session_number", "declared_total")
REQUIRED_CSV_FIELDS = ("external_id", "instrument", "measured_at")
LOOKUP_BATCH = 500


class ImportRecord(Schema):
    """One measurement to import (the NDJSON shape; CSV rows are converted to it)."""

    external_id: Annotated[str, Field(min_length=1, max_length=300)]
    instrument: Annotated[str, Field(min_length=1, max_length=50)]
    measured_at: ClinicalTime
    session_number: Annotated[int, Field(strict=True, ge=1, le=100_000)] | None = None
    declared_total: DeclaredTotal = None
    items: ItemAnswers


@dataclass(frozen=True)
class RawRecord:
    row: int
    data: dict[str, Any]
    problem: tuple[str, str] | None = None
    """(field, message) when the line itself could not be read as a record."""


@dataclass(frozen=True)
class CheckedRecord:
    """A record that passed every check; ``patient_id`` is None for a patient the import will create."""

    row: int
    record: ImportRecord
    patient_id: uuid.UUID | None
    scored: ScoreResult
    """The record's answers scored under the instrument's current definition: the score that is stored."""


@dataclass
class _Problems:
    rejected: list[RejectedRow] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    def add(self, row: int, field_name: str, message: str, value: Any = None, allowed: list[Any] | None = None) -> None:
        self.rejected.append(RejectedRow(row=row, field=field_name, message=message))
        self.errors.append(FieldError(field=f"rows.{row}.{field_name}", message=message, value=value, allowed=allowed))


def _answer(cell: str) -> int | str:
    text = cell.strip()
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def _csv_records(text: str) -> Iterator[RawRecord]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in CSV_FIELDS and not ITEM_COLUMN.match(name)]
    missing = [name for name in REQUIRED_CSV_FIELDS if name not in header]
    if unknown or missing:
        problems = _Problems()
        for name in missing:
            problems.add(1, name, f"the header has no {name!r} column")
        for name in unknown:
            problems.add(1, name, f"unknown column {name!r}; expected {', '.join(CSV_FIELDS)} and item_1, item_2, …")
        raise _rejected(problems, rows=0)
    for cells in reader:
        if None in cells:
            yield RawRecord(row=reader.line_num, data={}, problem=("line", "more cells than the header has columns"))
            continue
        data: dict[str, Any] = {"items": {}}
        for name, value in cells.items():
            if value is None or value.strip() == "":
                continue
            match = ITEM_COLUMN.match(name)
            if match:
                data["items"][match.group(1)] = _answer(value)
            elif name == "session_number":
                data[name] = _answer(value)
            elif name == "declared_total":
                data[name] = _number(value)
            else:
                data[name] = value.strip()
        yield RawRecord(row=reader.line_num, data=data)


def _number(cell: str) -> float | str:
    try:
        return float(cell)
    except ValueError:
        return cell


def _ndjson_records(text: str) -> Iterator[RawRecord]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            yield RawRecord(row=line_number, data=data)
        else:
            yield RawRecord(row=line_number, data={}, problem=("line", "not a JSON object"))


def parse(content: bytes, import_format: ImportFormat) -> list[RawRecord]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems = _Problems()
        problems.add(1, "file", "the file is not UTF-8 text")
        raise _rejected(problems, rows=0) from None
    if not text.strip():
        return []
    records = _csv_records(text) if import_format == "csv" else _ndjson_records(text)
    try:
        return list(records)
    except csv.Error as exc:
        problems = _Problems()
        problems.add(1, "file", f"not readable as CSV: {exc}")
        raise _rejected(problems, rows=0) from None


def _rejected(problems: _Problems, *, rows: int) -> InvalidInput:
    """The report: every rejected row in file order, as ``rejected_rows`` and as problem ``errors``."""
    order = sorted(range(len(problems.rejected)), key=lambda index: problems.rejected[index].row)
    count = len({entry.row for entry in problems.rejected})
    return InvalidInput(
        f"{count} row(s) rejected; nothing was imported",
        errors=[problems.errors[index] for index in order],
        rows=rows,
        rows_rejected=count,
        rejected_rows=[problems.rejected[index].model_dump() for index in order],
    )


def _validate_shape(raw: RawRecord, problems: _Problems) -> ImportRecord | None:
    if raw.problem is not None:
        problems.add(raw.row, *raw.problem)
        return None
    try:
        return ImportRecord.model_validate(raw.data)
    except ValidationError as exc:
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "record"
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input") if location.startswith("items") else None
            problems.add(raw.row, location, message, value)
        return None


def _existing_patients(db: Session, clinic_id: uuid.UUID, external_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    unique = sorted(set(external_ids))
    for start in range(0, len(unique), LOOKUP_BATCH):
        rows = db.execute(
            select(PatientIdentifier.value, PatientIdentifier.patient_id).where(
                PatientIdentifier.clinic_id == clinic_id,
                PatientIdentifier.system == LOCAL_IDENTIFIER_SYSTEM,
                PatientIdentifier.value.in_(unique[start : start + LOOKUP_BATCH]),
            )
        )
        found.update((row.value, row.patient_id) for row in rows)
    return found


def _stored_times(
    db: Session, clinic_id: uuid.UUID, patient_ids: Iterable[uuid.UUID], records: Sequence[ImportRecord]
) -> set[tuple[uuid.UUID, str, datetime]]:
    """(patient, instrument, time) of these patients' current measurements that a record of the file could repeat.

    Only the file's time span is read, so a weekly feed costs the same whether the patients have ten or ten
    thousand earlier measurements (bench/README.md, change 11).
    """
    stored: set[tuple[uuid.UUID, str, datetime]] = set()
    ids = sorted(set(patient_ids))
    if not ids or not records:
        return stored
    earliest = min(record.measured_at for record in records)
    latest = max(record.measured_at for record in records)
    for start in range(0, len(ids), LOOKUP_BATCH):
        rows = db.execute(
            select(Measurement.patient_id, Measurement.instrument_id, Measurement.measured_at).where(
                Measurement.clinic_id == clinic_id,
                Measurement.is_current.is_(True),
                Measurement.patient_id.in_(ids[start : start + LOOKUP_BATCH]),
                Measurement.measured_at.between(earliest, latest),
            )
        )
        stored.update((patient_id, instrument, measured_at) for patient_id, instrument, measured_at in rows)
    return stored


def check(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    records: Sequence[RawRecord],
    create_patients: bool,
    progress: Progress | None = None,
) -> list[CheckedRecord]:
    """Validate every record without storing anything; raise InvalidInput listing every rejected row."""
    problems = _Problems()
    shaped = [(raw.row, _validate_shape(raw, problems)) for raw in records]
    valid = [(row, record) for row, record in shaped if record is not None]
    known = _existing_patients(db, clinic_id, [record.external_id for _row, record in valid])
    stored = _stored_times(db, clinic_id, known.values(), [record for _row, record in valid])
    seen: dict[tuple[str, str, datetime], int] = {}
    checked: list[CheckedRecord] = []
    for done, (row, record) in enumerate(valid, start=1):
        if progress is not None and (done % 500 == 0 or done == len(valid)):
            progress("checking", done, len(valid))
        patient_id = known.get(record.external_id)
        if patient_id is None and not create_patients:
            problems.add(row, "external_id", "no patient with this external_id in the clinic", record.external_id)
        definition = registry.definitions.get(record.instrument)
        if definition is None:
            problems.add(
                row, "instrument", f"unknown instrument {record.instrument!r}", record.instrument, registry.ids()
            )
            continue
        scored: ScoreResult | None = None
        try:
            scored = scoring.score_answers(definition, record.items, declared_total=record.declared_total)
        except InvalidInput as exc:
            for error in exc.errors:
                problems.add(row, error.field, error.message, error.value, error.allowed)
        key = (record.external_id, record.instrument, record.measured_at)
        if key in seen:
            problems.add(row, "measured_at", f"the same measurement is already on line {seen[key]} of the file")
        elif patient_id is not None and (patient_id, record.instrument, record.measured_at) in stored:
            problems.add(row, "measured_at", "this patient already has a measurement of this instrument at this time")
        seen.setdefault(key, row)
        if scored is not None:
            checked.append(CheckedRecord(row=row, record=record, patient_id=patient_id, scored=scored))
    if problems.rejected:
        raise _rejected(problems, rows=len(records))
    return checked


STORE_BATCH = 1_000
"""Measurements stored per statement: one executemany per batch, not one INSERT per row."""


def store(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    checked: Sequence[CheckedRecord],
    recorded_by_key_id: uuid.UUID | None,
    progress: Progress | None = None,
) -> ImportReport:
    created_patients: dict[str, uuid.UUID] = {}
    sessions: dict[tuple[uuid.UUID, int], uuid.UUID] = {}
    sessions_created = 0
    by_instrument: dict[str, int] = {}
    pending: list[measurements.NewMeasurement] = []
    for done, entry in enumerate(checked, start=1):
        record = entry.record
        patient_id = entry.patient_id or created_patients.get(record.external_id)
        if patient_id is None:
            patient = patients.create(db, clinic_id=clinic_id, data=PatientCreate(external_id=record.external_id))
            patient_id = created_patients[record.external_id] = patient.id
        session_id = None
        if record.session_number is not None:
            key = (patient_id, record.session_number)
            if key not in sessions:
                found = db.scalar(
                    select(TherapySession.id).where(
                        TherapySession.clinic_id == clinic_id,
                        TherapySession.patient_id == patient_id,
                        TherapySession.session_number == record.session_number,
                    )
                )
                if found is None:
                    created = therapy_sessions.create(
                        db,
                        clinic_id=clinic_id,
                        patient_id=patient_id,
                        data=TherapySessionCreate(started_at=record.measured_at, session_number=record.session_number),
                    )
                    found = created.id
                    sessions_created += 1
                sessions[key] = found
            session_id = sessions[key]
        pending.append(
            measurements.new_measurement(
                registry,
                record.instrument,
                clinic_id=clinic_id,
                patient_id=patient_id,
                items=record.items,
                measured_at=record.measured_at,
                source=Source.IMPORT,
                session_id=session_id,
                declared_total=record.declared_total,
                recorded_by_key_id=recorded_by_key_id,
                scored=entry.scored,
            )
        )
        by_instrument[record.instrument] = by_instrument.get(record.instrument, 0) + 1
        if len(pending) == STORE_BATCH or done == len(checked):
            recording.record(db, pending)
            pending.clear()
            if progress is not None:
                progress("storing", done, len(checked))
    return ImportReport(
        rows=len(checked),
        imported=len(checked),
        patients_created=len(created_patients),
        sessions_created=sessions_created,
        by_instrument=dict(sorted(by_instrument.items())),
    )


def import_records(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    records: Sequence[RawRecord],
    create_patients: bool = False,
    recorded_by_key_id: uuid.UUID | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Check every record, then store them all; raise InvalidInput (storing nothing) if any row is rejected."""
    if not records:
        raise InvalidInput("the file has no records; nothing was imported", errors=[FieldError("file", "no records")])
    checked = check(
        db, registry, clinic_id=clinic_id, records=records, create_patients=create_patients, progress=progress
    )
    return store(
        db,
        registry,
        clinic_id=clinic_id,
        checked=checked,
        recorded_by_key_id=recorded_by_key_id,
        progress=progress,
    )


def import_file(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    content: bytes,
    import_format: ImportFormat,
    create_patients: bool = False,
    recorded_by_key_id: uuid.UUID | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    return import_records(
        db,
        registry,
        clinic_id=clinic_id,
        records=parse(content, import_format),
        create_patients=create_patients,
        recorded_by_key_id=recorded_by_key_id,
        progress=progress,
    )


def record_to_csv_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record.get(name) for name in CSV_FIELDS}
    row.update({f"item_{number}": answer for number, answer in record["items"].items()})
    return row


def write_records(records: Iterable[dict[str, Any]], out: TextIO, *, import_format: ImportFormat, items: int) -> int:
    """Write import records as CSV (``items`` item columns, text cells neutralised) or NDJSON; returns how many were
    written."""
    count = 0
    if import_format == "ndjson":
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
        return count
    names = [*CSV_FIELDS, *(f"item_{n}" for n in range(1, items + 1))]
    out.write(csv_line(names))
    for record in records:
        row = record_to_csv_row(record)
        # No text cell starts a formula (writers.neutralise); the service's own records never need it.
        out.write(csv_line(neutralised_row(row.get(name) for name in names)))
        count += 1
    return count
