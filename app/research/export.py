"""Research export rows, read with a server-side cursor and built one measurement (or one patient-week) at a time.

Only current versions of measurements are read (``is_current``); amendment reasons, item wording and external
identifiers are never selected for a de-identified export. Rows come ordered by internal patient id (a random UUID,
so the order reveals nothing) and time; each patient's time is relative to their first measurement of any
instrument (``timeline``), so no calendar date leaves in a de-identified export.
"""

from __future__ import annotations

import heapq
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, String, and_, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from app.care.models import AssessmentOccurrence
from app.care.windows import DECLINED, OPEN
from app.core.db import utcnow
from app.measurements.models import Measurement
from app.patients.models import PatientIdentifier
from app.patients.schemas import LOCAL_IDENTIFIER_SYSTEM
from app.research.missing import COMPLETED, Missing
from app.research.schemas import Layout, Level
from app.research.timeline import days_between_in_sql, month_start, next_month_start, week_of
from app.research.variables import Column, Value, band_codes, band_label, columns_for, variable_name
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
        Measurement.measured_at.label("at"),
        Measurement.id.label("event_id"),
    ]
    if spec.identified:
        columns.append(Measurement.measured_at)
        columns.append(_external_id(Measurement.patient_id).label("external_id"))
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
    query = query.where(*_of_patients(spec, Measurement.patient_id))
    query = query.where(*_period(spec, Measurement.measured_at))
    return query.order_by(Measurement.patient_id, Measurement.measured_at, Measurement.id)


def _external_id(patient_id: Any) -> Any:
    return (
        select(func.min(PatientIdentifier.value))
        .where(PatientIdentifier.patient_id == patient_id, PatientIdentifier.system == LOCAL_IDENTIFIER_SYSTEM)
        .scalar_subquery()
    )


def _of_patients(spec: ExportSpec, patient_id: Any) -> list[Any]:
    """Only the patients the export may include (a research project's consenting ones), when it names them."""
    return [] if spec.patients is None else [patient_id.in_(spec.patients)]


def _period(spec: ExportSpec, at: Any) -> list[Any]:
    """The export's period as conditions on the time ``at`` (whole months when de-identified)."""
    conditions = []
    if spec.measured_from is not None:
        conditions.append(at >= (spec.measured_from if spec.identified else month_start(spec.measured_from)))
    if spec.measured_to is not None:
        if spec.identified:
            conditions.append(at <= spec.measured_to)
        elif (until := next_month_start(spec.measured_to)) is not None:
            conditions.append(at < until)
    return conditions


def occasion_query(spec: ExportSpec) -> Select[Any]:
    """Declined occasions, and open ones whose window closed before now (missed), of the selected instruments.

    Placed on the patient's timeline by the start of their window; occasions before the patient's first measurement
    (the timeline's origin) are left out. Only clinics that schedule assessments have any.
    """
    first = first_measurements(spec.clinic_id)
    occurrence = AssessmentOccurrence
    days = days_between_in_sql(first.c.first_at, occurrence.due_from)
    columns: list[Any] = [
        type_coerce(occurrence.patient_id, String()).label("patient_id"),
        occurrence.instrument_id,
        days.label("days"),
        occurrence.state,
        TherapySession.session_number,
        occurrence.due_from.label("at"),
        occurrence.id.label("event_id"),
    ]
    if spec.identified:
        columns.append(_external_id(occurrence.patient_id).label("external_id"))
    return (
        select(*columns)
        .join(first, first.c.patient_id == occurrence.patient_id)
        .outerjoin(TherapySession, TherapySession.id == occurrence.session_id)
        .where(
            occurrence.clinic_id == spec.clinic_id,
            occurrence.instrument_id.in_([definition.id for definition in spec.definitions]),
            or_(occurrence.state == DECLINED, and_(occurrence.state == OPEN, occurrence.due_by <= utcnow())),
            days >= 0,
            *_period(spec, occurrence.due_from),
            *_of_patients(spec, occurrence.patient_id),
        )
        .order_by(occurrence.patient_id, occurrence.due_from, occurrence.id)
    )


def with_data(db: Session, spec: ExportSpec) -> ExportSpec:
    """The spec narrowed to the instruments with a current measurement (or a declined or missed occasion) in its
    period: an export carries no column of an instrument nobody answered unless all instruments are asked for."""
    wanted = [definition.id for definition in spec.definitions]
    measured = select(Measurement.instrument_id).where(
        Measurement.clinic_id == spec.clinic_id,
        Measurement.is_current.is_(True),
        Measurement.instrument_id.in_(wanted),
        *_period(spec, Measurement.measured_at),
        *_of_patients(spec, Measurement.patient_id),
    )
    occasions = occasion_query(spec).with_only_columns(AssessmentOccurrence.instrument_id).order_by(None)
    present = set(db.scalars(measured.distinct())) | set(db.scalars(occasions.distinct()))
    return replace(spec, definitions=tuple(d for d in spec.definitions if d.id in present))


def export_rows(
    db: Session, spec: ExportSpec, *, pseudonymise: Callable[[uuid.UUID], str] | None
) -> Iterator[list[Value]]:
    """The export's rows in column order; ``pseudonymise`` is required unless the export is identified."""
    if not spec.identified and pseudonymise is None:
        raise ValueError("a de-identified export needs a pseudonymiser")
    # On the session's Core connection: the ORM's result path would add per-row loading work for plain columns.
    measurements = db.connection().execute(measurement_query(spec).execution_options(yield_per=YIELD_PER))
    occasions = db.connection().execute(occasion_query(spec).execution_options(yield_per=YIELD_PER))
    if spec.layout is Layout.LONG:
        yield from _LongRows(spec, pseudonymise).rows(_in_time_order(measurements, occasions))
        return
    yield from _WideRows(spec, pseudonymise, occasions).rows(measurements)


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
    def rows(self, events: Iterator[Any]) -> Iterator[list[Value]]:
        """The export rows built from the events (measurements, and declined or missed occasions), in order."""


def _ordered(known: list[str], scores: dict[str, Any]) -> list[str]:
    """The definition's score keys first, then any other stored key (a score an older definition had)."""
    return [*known, *(key for key in scores if key not in known)]


class _LongRows(_Rows):
    def __init__(self, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str] | None) -> None:
        super().__init__(spec, pseudonymise)
        self.score_keys = {definition.id: [score.key for score in definition.scores] for definition in spec.definitions}
        self.bands = _bands(spec)

    def rows(self, events: Iterator[tuple[int, Row[Any]]]) -> Iterator[list[Value]]:
        for kind, row in events:
            days = row.days
            head: list[Value] = [*self.identity(row), row.session_number, week_of(days), days]
            if self.spec.identified:
                head.append(row.at)
            definition = self.definitions[row.instrument_id]
            if kind == _OCCASION:
                yield from self._occasion([*head, row.instrument_id, definition.version], definition, row)
                continue
            head += [row.instrument_id, row.definition_version]
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
                value = score.get("value")
                codes = self.bands.get((definition.id, key))
                band = score.get("band")
                yield [
                    *head,
                    key,
                    Missing.UNANSWERED if value is None else value,
                    _band_code(codes, band, value),
                    band_label(band) if isinstance(band, str) and band else None,
                    prorated,
                    flags,
                ]

    def _occasion(self, head: list[Value], definition: InstrumentDefinition, row: Row[Any]) -> Iterator[list[Value]]:
        """A declined or missed occasion: a row per score (or item) of its instrument, each coded with the reason."""
        reason = Missing.DECLINED if row.state == DECLINED else Missing.MISSED
        if self.spec.level is Level.SCORES:
            for spec in definition.scores:
                yield [*head, spec.key, reason, reason if spec.bands else None, None, None, None]
            return
        for item in definition.items:
            yield [*head, int(item.number), reason, reason]

    @staticmethod
    def _items(head: list[Value], definition: InstrumentDefinition, items: dict[str, Any]) -> Iterator[list[Value]]:
        for item in definition.items:
            answer = items.get(item.number)
            if answer is None:
                yield [*head, int(item.number), Missing.UNANSWERED, Missing.UNANSWERED]
                continue
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
            yield [*head, int(item.number), str(answer), item_score]


def _bands(spec: ExportSpec) -> dict[tuple[str, str], dict[str, int]]:
    """Each banded score's band codes, by (instrument, score key)."""
    return {
        (definition.id, score.key): band_codes(score)
        for definition in spec.definitions
        for score in definition.scores
        if score.bands
    }


def _band_code(codes: dict[str, int] | None, band: str | None, value: Any) -> Value:
    """The band's code; the unanswered code for a banded score that could not be scored; empty without bands."""
    if codes is None:
        return None
    if band is not None and band in codes:
        return codes[band]
    return Missing.UNANSWERED if value is None else None


class _WideRows(_Rows):
    """One row per occasion of a patient-week (``variables.OCCASION_RULE``): the n-th answer, declined or missed
    occasion of each instrument in the week is in occasion n's row, so no measurement is dropped.

    Measurements and declined or missed occasions come in two streams, both ordered by patient; each patient's
    events are gathered (one patient at a time, so memory stays flat whatever the export's size) and laid out week by
    week. Within a week an instrument's occasions are ordered by day, measurements before declined or missed ones of
    the same day.
    """

    def __init__(
        self, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str] | None, occasions: Iterator[Row[Any]]
    ) -> None:
        super().__init__(spec, pseudonymise)
        self.columns = spec.columns
        self.index = {column.name: position for position, column in enumerate(self.columns)}
        self.width = len(self.columns)
        self.fixed = 4 if spec.identified else 3  # identity columns, then week and occasion
        self.bands = _bands(spec)
        self.occasions = occasions

    def rows(self, events: Iterator[Any]) -> Iterator[list[Value]]:
        for rows in _by_patient(events, self.occasions):
            weeks: dict[int, dict[str, list[tuple[int, int, Row[Any]]]]] = {}
            for kind, row in rows:
                instrument_events = weeks.setdefault(week_of(row.days), {}).setdefault(row.instrument_id, [])
                instrument_events.append((row.days, kind, row))
            identity = self.identity(rows[0][1])
            for week in sorted(weeks):
                by_instrument = {
                    instrument: sorted(listed, key=_event_order) for instrument, listed in weeks[week].items()
                }
                for occasion in range(1, max(map(len, by_instrument.values())) + 1):
                    yield self._occasion_row(identity, week, occasion, by_instrument)

    def _occasion_row(
        self,
        identity: list[Value],
        week: int,
        occasion: int,
        by_instrument: dict[str, list[tuple[int, int, Row[Any]]]],
    ) -> list[Value]:
        current: list[Value] = [*identity, week, occasion, *([None] * (self.width - self.fixed))]
        session: int | None = None
        for definition in self.spec.definitions:
            events = by_instrument.get(definition.id, [])
            if occasion > len(events):
                self._missing(current, definition, Missing.NOT_ADMINISTERED)
                continue
            _, kind, row = events[occasion - 1]
            if kind != _MEASURED:
                self._missing(current, definition, Missing.DECLINED if row.state == DECLINED else Missing.MISSED)
                continue
            if row.session_number is not None:
                session = row.session_number if session is None else max(session, row.session_number)
            current[self.index[variable_name(definition.id, "status")]] = COMPLETED
            self._fill(current, definition, row)
        current[self.fixed] = session
        return current

    def _missing(self, current: list[Value], definition: InstrumentDefinition, reason: Missing) -> None:
        current[self.index[variable_name(definition.id, "status")]] = reason.value
        if self.spec.level is Level.SCORES:
            for spec in definition.scores:
                current[self.index[variable_name(definition.id, spec.key)]] = reason
                if spec.bands:
                    current[self.index[variable_name(definition.id, spec.key, "band")]] = reason
            return
        for item in definition.items:
            current[self.index[variable_name(definition.id, f"i{item.number}")]] = reason

    def _fill(self, current: list[Value], definition: InstrumentDefinition, row: Row[Any]) -> None:
        if self.spec.level is Level.SCORES:
            scores: dict[str, dict[str, Any]] = row.payload
            for spec in definition.scores:
                score = scores.get(spec.key) or {}
                value = score.get("value")
                current[self.index[variable_name(definition.id, spec.key)]] = (
                    Missing.UNANSWERED if value is None else value
                )
                if spec.bands:
                    band = score.get("band")
                    code = _band_code(self.bands[(definition.id, spec.key)], band, value)
                    current[self.index[variable_name(definition.id, spec.key, "band")]] = code
                    label = band_label(band) if isinstance(code, int) and code > 0 and band else None
                    current[self.index[variable_name(definition.id, spec.key, "band_label")]] = label
            return
        items: dict[str, Any] = row.payload
        for item in definition.items:
            position = self.index[variable_name(definition.id, f"i{item.number}")]
            answer = items.get(item.number)
            text = self.columns[position].type == "string"
            if answer is None:
                current[position] = Missing.UNANSWERED
            else:
                current[position] = str(answer) if text else answer


_MEASURED = 0
_OCCASION = 1


def _event_order(event: tuple[int, int, Row[Any]]) -> tuple[int, int]:
    days, kind, _ = event
    return days, kind


def _patient_of(row: Row[Any]) -> uuid.UUID:
    stored = row.patient_id
    return stored if isinstance(stored, uuid.UUID) else uuid.UUID(hex=stored)


def _in_time_order(measurements: Iterator[Row[Any]], occasions: Iterator[Row[Any]]) -> Iterator[tuple[int, Row[Any]]]:
    """Measurements and declined or missed occasions merged by patient, then time (a measurement's answer, an
    occasion's window start), a measurement first at the same moment; each stream keeps its order otherwise."""
    streams = [
        (((_patient_of(row), row.at, _MEASURED), _MEASURED, row) for row in measurements),
        (((_patient_of(row), row.at, _OCCASION), _OCCASION, row) for row in occasions),
    ]
    for _, kind, row in heapq.merge(*streams, key=lambda event: event[0]):
        yield kind, row


def _by_patient(
    measurements: Iterator[Row[Any]], occasions: Iterator[Row[Any]]
) -> Iterator[list[tuple[int, Row[Any]]]]:
    """Each patient's measurements and declined or missed occasions, merged from two streams ordered by patient.

    Both queries order by the patient's id as the database stores it; a UUID orders as its bytes (PostgreSQL) or
    as its lower-case hex text (SQLite), which is how ``uuid.UUID`` values compare.
    """
    streams = [
        ((_patient_of(row), _MEASURED, row) for row in measurements),
        ((_patient_of(row), _OCCASION, row) for row in occasions),
    ]
    pending: list[tuple[int, Row[Any]]] = []
    patient: uuid.UUID | None = None
    for key, kind, row in heapq.merge(*streams, key=lambda event: event[0]):
        if key != patient:
            if pending:
                yield pending
            pending = []
            patient = key
        pending.append((kind, row))
    if pending:
        yield pending
