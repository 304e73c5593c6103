"""Research export rows, read with a server-side cursor and built one measurement (or one patient-week) at a time.

Only current versions of measurements are read (``is_current``); amendment reasons, item wording and external
identifiers are never selected for a de-identified export. Rows come ordered by internal patient id (a random UUID,
so the order reveals nothing) and time; each patient's time is relative to their first measurement of any
instrument (``timeline``), so no calendar date leaves in a de-identified export.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, String, func, select, type_coerce
from sqlalchemy.orm import Session

from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM
from app.research.schemas import Layout, Level
from app.research.timeline import days_between_in_sql, month_start, next_month_start, week_of
from app.research.variables import Column, Value, band_codes, columns_for, variable_name
from app.scoring.definition import InstrumentDefinition
from app.therapy_sessions.models import TherapySession

YIELD_PER = 1_000
"""Rows per fetch from the server-side cursor (a round trip each on PostgreSQL); about 2.5 MB in memory."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export: whose data, which instruments, which shape, and whether identified."""

    clinic_id: uuid.UUID
    definitions: tuple[InstrumentDefinition, ...]
    layout: Layout
    level: Level
    measured_from: datetime | None = None
    """Inclusive. A de-identified export widens it to the start of its UTC month (see ``measurement_query``)."""
    measured_to: datetime | None = None
    """Inclusive. A de-identified export widens it to the end of its UTC month."""
    identified: bool = False
    patients: Select[Any] | None = None
    """The ids of the patients the export may include: a research project's consenting patients
    (``projects.consenting_patient_ids``), read when the rows are. Required unless the export is identified (an
    identified export without it includes every patient of the clinic)."""

    synthetic: bool = False
    """The clinic is a synthetic one (generated data): said in the file's name (``responses.file_name``)."""

    def __post_init__(self) -> None:
        if not self.identified and self.patients is None:
            raise ValueError("a de-identified export is of a research project: give its consenting patients")

    @property
    def columns(self) -> list[Column]:
        return columns_for(self.layout, self.level, self.definitions, identified=self.identified)


def first_measurements(clinic_id: uuid.UUID) -> Any:
    """Each patient's first current measurement time (any instrument): the origin of their relative timeline."""
    return (
        select(Measurement.patient_id, func.min(Measurement.measured_at).label("first_at"))
        .where(Measurement.clinic_id == clinic_id, Measurement.is_current.is_(True))
        .group_by(Measurement.patient_id)
        .subquery()
    )


def measurement_query(spec: ExportSpec) -> Select[Any]:
    """Current measurements of the selected instruments, each with its patient's time origin and session number.

    In a de-identified export the period is widened to whole calendar months: exact bounds would let a researcher
    recover measurement dates by moving ``from`` a day at a time and watching rows appear (a filter is a query on
    the dates the export withholds); whole months reveal no more than the month a patient was measured in.
    """
    first = first_measurements(spec.clinic_id)
    payload = Measurement.scores if spec.level is Level.SCORES else Measurement.items
    columns: list[Any] = [
        # As stored (SQLite: hex text), made a UUID once per patient in ``_Rows.identity`` rather than once per row.
        type_coerce(Measurement.patient_id, String()).label("patient_id"),
        Measurement.instrument_id,
        Measurement.definition_version,
        days_between_in_sql(first.c.first_at, Measurement.measured_at).label("days"),
        TherapySession.session_number,
        Measurement.flags,
        payload.label("payload"),
    ]
    if spec.identified:
        columns.append(Measurement.measured_at)
        external_id = (
            select(func.min(PatientIdentifier.value))
            .where(
                PatientIdentifier.patient_id == Measurement.patient_id,
                PatientIdentifier.system == LOCAL_IDENTIFIER_SYSTEM,
            )
            .scalar_subquery()
        )
        columns.append(external_id.label("external_id"))
    query = (
        select(*columns)
        .join(first, first.c.patient_id == Measurement.patient_id)
        .outerjoin(TherapySession, TherapySession.id == Measurement.session_id)
        .where(
            Measurement.clinic_id == spec.clinic_id,
            Measurement.is_current.is_(True),
            Measurement.instrument_id.in_([definition.id for definition in spec.definitions]),
        )
    )
    if spec.patients is not None:
        query = query.where(Measurement.patient_id.in_(spec.patients))
    if spec.measured_from is not None:
        start = spec.measured_from if spec.identified else month_start(spec.measured_from)
        query = query.where(Measurement.measured_at >= start)
    if spec.measured_to is not None:
        if spec.identified:
            query = query.where(Measurement.measured_at <= spec.measured_to)
        elif (until := next_month_start(spec.measured_to)) is not None:
            query = query.where(Measurement.measured_at < until)
    return query.order_by(Measurement.patient_id, Measurement.measured_at, Measurement.id)


def export_rows(
    db: Session, spec: ExportSpec, *, pseudonymise: Callable[[uuid.UUID], str] | None
) -> Iterator[list[Value]]:
    """The export's rows in column order; ``pseudonymise`` is required unless the export is identified."""
    if not spec.identified and pseudonymise is None:
        raise ValueError("a de-identified export needs a pseudonymiser")
    # On the session's Core connection: the ORM's result path would add per-row loading work for plain columns.
    measurements = db.connection().execute(measurement_query(spec).execution_options(yield_per=YIELD_PER))
    builder = _LongRows(spec, pseudonymise) if spec.layout is Layout.LONG else _WideRows(spec, pseudonymise)
    yield from builder.rows(measurements)


class _Rows(ABC):
    def __init__(self, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str] | None) -> None:
        self.spec = spec
        self.pseudonymise = pseudonymise
        self.definitions = {definition.id: definition for definition in spec.definitions}
        self._identity_of: str | uuid.UUID | None = None
        self._identity: list[Value] = []

    def identity(self, row: Row[Any]) -> list[Value]:
        """The identity columns, worked out once per patient (rows come patient by patient)."""
        if row.patient_id != self._identity_of:
            stored = row.patient_id  # as stored: a UUID, or hex text on SQLite
            patient_id = stored if isinstance(stored, uuid.UUID) else uuid.UUID(hex=stored)
            if self.spec.identified:
                self._identity = [str(patient_id), row.external_id]
            else:
                assert self.pseudonymise is not None  # checked in export_rows
                self._identity = [self.pseudonymise(patient_id)]
            self._identity_of = row.patient_id
        return self._identity

    @abstractmethod
    def rows(self, measurements: Iterator[Row[Any]]) -> Iterator[list[Value]]:
        """The export rows built from the measurements, in order."""


def _ordered(known: list[str], scores: dict[str, Any]) -> list[str]:
    """The definition's score keys first, then any other stored key (a score an older definition had)."""
    return [*known, *(key for key in scores if key not in known)]


class _LongRows(_Rows):
    def __init__(self, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str] | None) -> None:
        super().__init__(spec, pseudonymise)
        self.score_keys = {definition.id: [score.key for score in definition.scores] for definition in spec.definitions}

    def rows(self, measurements: Iterator[Row[Any]]) -> Iterator[list[Value]]:
        for row in measurements:
            days = row.days
            head: list[Value] = [*self.identity(row), row.session_number, week_of(days), days]
            if self.spec.identified:
                head.append(row.measured_at)
            head += [row.instrument_id, row.definition_version]
            definition = self.definitions[row.instrument_id]
            if self.spec.level is Level.SCORES:
                yield from self._scores(head, definition, row)
            else:
                yield from self._items(head, definition, row.payload)

    def _scores(self, head: list[Value], definition: InstrumentDefinition, row: Row[Any]) -> Iterator[list[Value]]:
        scores: dict[str, dict[str, Any]] = row.payload
        known = self.score_keys[definition.id]
        flags = ";".join(row.flags)
        keys = known if len(scores) == len(known) and all(key in scores for key in known) else _ordered(known, scores)
        for key in keys:
            score = scores.get(key)
            if score is not None:
                prorated = 1 if score.get("prorated") else 0
                yield [*head, key, score.get("value"), score.get("band"), prorated, flags]

    @staticmethod
    def _items(head: list[Value], definition: InstrumentDefinition, items: dict[str, Any]) -> Iterator[list[Value]]:
        for item in definition.items:
            answer = items.get(item.number)
            item_score = None
            if answer is not None:
                item_score = next(
                    (
                        option.numeric_score
                        for option in definition.options_for(item)
                        if type(option.value) is type(answer) and option.value == answer
                    ),
                    None,
                )
            yield [*head, int(item.number), None if answer is None else str(answer), item_score]


class _WideRows(_Rows):
    """One row per patient-week; the last measurement of an instrument in the week wins (rows come in time order)."""

    def __init__(self, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str] | None) -> None:
        super().__init__(spec, pseudonymise)
        self.columns = spec.columns
        self.index = {column.name: position for position, column in enumerate(self.columns)}
        self.width = len(self.columns)
        self.fixed = 3 if spec.identified else 2  # identity columns, then week
        self.bands = {
            (definition.id, score.key): band_codes(score)
            for definition in spec.definitions
            for score in definition.scores
        }

    def rows(self, measurements: Iterator[Row[Any]]) -> Iterator[list[Value]]:
        current: list[Value] | None = None
        key: tuple[uuid.UUID, int] | None = None
        for row in measurements:
            week = week_of(row.days)
            if key != (row.patient_id, week):
                if current is not None:
                    yield current
                key = (row.patient_id, week)
                current = [*self.identity(row), week, *([None] * (self.width - self.fixed))]
            assert current is not None
            if row.session_number is not None:
                session_at = self.fixed
                previous = current[session_at]
                current[session_at] = (
                    max(row.session_number, previous) if isinstance(previous, int) else row.session_number
                )
            self._fill(current, row)
        if current is not None:
            yield current

    def _fill(self, current: list[Value], row: Row[Any]) -> None:
        definition = self.definitions[row.instrument_id]
        if self.spec.level is Level.SCORES:
            scores: dict[str, dict[str, Any]] = row.payload
            for spec in definition.scores:
                score = scores.get(spec.key, {})
                current[self.index[variable_name(definition.id, spec.key)]] = score.get("value")
                if spec.bands:
                    band = score.get("band")
                    code = self.bands[(definition.id, spec.key)].get(band) if band is not None else None
                    current[self.index[variable_name(definition.id, spec.key, "band")]] = code
            return
        items: dict[str, Any] = row.payload
        for item in definition.items:
            position = self.index[variable_name(definition.id, f"i{item.number}")]
            answer = items.get(item.number)
            text = self.columns[position].type == "string"
            current[position] = str(answer) if text and answer is not None else answer
