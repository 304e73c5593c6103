"""Schedules and their stored occurrences: create, list, end, decline, keep a year ahead.

An occurrence's status is never stored: ``status_condition`` (SQL) and ``windows.status_at`` (Python) derive it from
the stored state and the time, the same way, so a window that closed empty reads ``missed`` on the next read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.orm import Session

from app.care import completion
from app.care.models import AssessmentOccurrence, Schedule
from app.care.schemas import AssessmentRead, Decline, ScheduleCreate, ScheduleRead, Status
from app.care.windows import (
    CANCELLED,
    DECLINABLE,
    DECLINED,
    DUE,
    HORIZON,
    MISSED,
    OPEN,
    SCHEDULED,
    START_WITHIN,
    STATUSES,
    Window,
    local_day,
    session_window,
    start_of_day,
    status_at,
    time_zone,
    windows,
)
from app.core.db import insert_rows, new_record_id, utcnow
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.jobs import JobRun
from app.instruments.registry import InstrumentRegistry
from app.therapy_sessions.models import TherapySession

EXTEND_HORIZONS_TASK = "care.extend_horizons"
"""The periodic job that calls ``extend_horizons`` (registered by ``app.jobs``; run daily)."""
DEFAULT_SESSION_TIMEZONE = "UTC"


def status_condition(status: str, now: datetime) -> ColumnElement[bool]:
    """SQL for "the occurrence's status at ``now`` is ``status``" (``windows.status_at``), on indexed columns."""
    occurrence = AssessmentOccurrence
    if status == SCHEDULED:
        return and_(occurrence.state == OPEN, occurrence.due_from > now)
    if status == DUE:
        return and_(occurrence.state == OPEN, occurrence.due_from <= now, occurrence.due_by > now)
    if status == MISSED:
        return and_(occurrence.state == OPEN, occurrence.due_by <= now)
    return occurrence.state == status


def status_expression(now: datetime) -> ColumnElement[str]:
    """SQL for ``windows.status_at``: the status of each row at ``now``."""
    occurrence = AssessmentOccurrence
    return case(
        (and_(occurrence.state == OPEN, occurrence.due_from > now), SCHEDULED),
        (and_(occurrence.state == OPEN, occurrence.due_by > now), DUE),
        (occurrence.state == OPEN, MISSED),
        else_=occurrence.state,
    )


# --- schedules ---------------------------------------------------------------------------------------------------


def check_schedule(data: ScheduleCreate, registry: InstrumentRegistry, now: datetime) -> ZoneInfo:
    """The schedule's time zone, or InvalidInput naming every field that is wrong and what it allows."""
    errors: list[FieldError] = []
    known = registry.ids()
    for index, instrument in enumerate(data.instruments):
        if instrument not in registry.definitions:
            errors.append(FieldError(f"instruments.{index}", "unknown instrument", instrument, known))
        elif data.instruments.index(instrument) != index:
            errors.append(FieldError(f"instruments.{index}", "instrument listed twice", instrument))
    recurring = data.every_days is not None
    if recurring == data.at_each_session:
        errors.append(
            FieldError(
                "every_days",
                "give every_days (a recurring schedule) or at_each_session: true (a window at each therapy "
                "session), exactly one of them",
                data.every_days,
            )
        )
    zone_name = data.timezone
    if zone_name is None and recurring:
        errors.append(
            FieldError("timezone", "a recurring schedule needs the patient's IANA time zone, e.g. Europe/Oslo")
        )
    zone = time_zone(zone_name or DEFAULT_SESSION_TIMEZONE)
    if zone is None:
        errors.append(FieldError("timezone", "unknown IANA time zone; use a name such as Europe/Oslo", zone_name))
    if data.every_days is not None and data.window_days > data.every_days:
        errors.append(
            FieldError(
                "window_days",
                f"at most every_days ({data.every_days}): a schedule's windows do not overlap",
                data.window_days,
            )
        )
    today = local_day(now, zone or ZoneInfo(DEFAULT_SESSION_TIMEZONE))
    earliest, latest = today - START_WITHIN, today + START_WITHIN
    if data.starts_on is None and recurring:
        errors.append(FieldError("starts_on", "a recurring schedule needs the day its first window opens"))
    if data.starts_on is not None and not earliest <= data.starts_on <= latest:
        errors.append(
            FieldError(
                "starts_on",
                f"must be from {earliest.isoformat()} to {latest.isoformat()} (at most {START_WITHIN.days} days "
                "from today)",
                data.starts_on.isoformat(),
            )
        )
    first = data.starts_on or today
    if data.ends_on is not None and data.ends_on < first:
        errors.append(
            FieldError("ends_on", f"must be on or after starts_on ({first.isoformat()})", data.ends_on.isoformat())
        )
    if errors or zone is None:
        raise InvalidInput("the schedule is not valid", errors=errors)
    return zone


def create_schedule(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    data: ScheduleCreate,
    key_id: uuid.UUID | None,
    now: datetime,
) -> Schedule:
    """Store a schedule for a patient already checked to belong to the clinic, and its occurrences: every window up
    to ``ends_on`` or the horizon (recurring), or one per session already held since ``starts_on`` (at each
    session). Measurements already in those windows complete them."""
    zone = check_schedule(data, registry, now)
    schedule = Schedule(
        clinic_id=clinic_id,
        patient_id=patient_id,
        instruments=list(data.instruments),
        at_each_session=data.at_each_session,
        starts_on=data.starts_on if data.every_days is not None else data.starts_on or local_day(now, zone),
        every_days=data.every_days,
        window_days=data.window_days,
        ends_on=data.ends_on,
        timezone=zone.key,
        created_by_key_id=key_id,
        created_at=now,
    )
    db.add(schedule)
    db.flush()
    if schedule.at_each_session:
        _add_for_sessions_held(db, schedule, zone, now=now)
    else:
        _generate(db, schedule, zone, opening_from=start_of_day(_starts_on(schedule), zone), now=now)
    completion.complete_schedule(db, schedule.id, now)
    return schedule


def _add_for_sessions_held(db: Session, schedule: Schedule, zone: ZoneInfo, *, now: datetime) -> None:
    """An at-each-session schedule starting on a past day: the sessions already held since then are due too."""
    held = list(
        db.scalars(
            select(TherapySession)
            .where(
                TherapySession.clinic_id == schedule.clinic_id,
                TherapySession.patient_id == schedule.patient_id,
                TherapySession.started_at >= start_of_day(_starts_on(schedule), zone),
            )
            .order_by(TherapySession.started_at)
        )
    )
    for therapy_session in held:
        add_for_session(db, schedule, therapy_session, now=now)


def sessions_schedules(db: Session, therapy_session: TherapySession) -> list[Schedule]:
    """The patient's running at-each-session schedules that a session counts for (on or after ``starts_on``, on or
    before ``ends_on``, in each schedule's time zone)."""
    running = db.scalars(
        select(Schedule)
        .where(
            Schedule.clinic_id == therapy_session.clinic_id,
            Schedule.patient_id == therapy_session.patient_id,
            Schedule.at_each_session.is_(True),
            Schedule.ended_at.is_(None),
        )
        .order_by(Schedule.created_at, Schedule.id)
    )
    return [schedule for schedule in running if _counts(schedule, therapy_session.started_at)]


def _counts(schedule: Schedule, started_at: datetime) -> bool:
    day = local_day(started_at, ZoneInfo(schedule.timezone))
    return _starts_on(schedule) <= day and (schedule.ends_on is None or day <= schedule.ends_on)


def add_for_session(db: Session, schedule: Schedule, therapy_session: TherapySession, *, now: datetime) -> None:
    """The occurrences a session makes due under an at-each-session schedule. Two sessions starting at the same
    moment share them (one window)."""
    if not _counts(schedule, therapy_session.started_at):
        return
    taken = db.scalar(
        select(AssessmentOccurrence.id)
        .where(
            AssessmentOccurrence.schedule_id == schedule.id,
            AssessmentOccurrence.due_from == therapy_session.started_at,
        )
        .limit(1)
    )
    if taken is not None:
        return
    window = session_window(therapy_session.started_at, window_days=schedule.window_days)
    store_occurrences(db, schedule, [window], now=now, session_id=therapy_session.id)


def _starts_on(schedule: Schedule) -> date:
    if schedule.starts_on is None:
        raise ValueError(f"schedule {schedule.id} has no starts_on")
    return schedule.starts_on


def _generate(db: Session, schedule: Schedule, zone: ZoneInfo, *, opening_from: datetime, now: datetime) -> int:
    """Store the recurring schedule's windows opening in [opening_from, now + HORIZON); move its horizon."""
    until = now + HORIZON
    if schedule.every_days is None:
        raise ValueError(f"schedule {schedule.id} is not recurring")
    found = list(
        windows(
            _starts_on(schedule),
            every_days=schedule.every_days,
            window_days=schedule.window_days,
            zone=zone,
            ends_on=schedule.ends_on,
            opening_from=opening_from,
            opening_before=until,
        )
    )
    store_occurrences(db, schedule, found, now=now)
    schedule.generated_until = until
    return len(found)


def store_occurrences(
    db: Session, schedule: Schedule, found: list[Window], *, now: datetime, session_id: uuid.UUID | None = None
) -> None:
    """One occurrence per instrument per window (one statement)."""
    insert_rows(
        db,
        AssessmentOccurrence,
        [
            {
                "id": new_record_id(),
                "clinic_id": schedule.clinic_id,
                "patient_id": schedule.patient_id,
                "schedule_id": schedule.id,
                "session_id": session_id,
                "instrument_id": instrument,
                "due_from": window.due_from,
                "due_by": window.due_by,
                "state": OPEN,
                "measurement_id": None,
                "completed_at": None,
                "declined_at": None,
                "decline_reason": None,
                "declined_by": None,
                "declined_by_key_id": None,
                "created_at": now,
                # A window closed before it was stored gets no reminder (app.clinical.reminders): passed over now.
                "due_reminded_at": now if window.due_by <= now else None,
                "overdue_reminded_at": now if window.due_by <= now else None,
            }
            for window in found
            for instrument in schedule.instruments
        ],
    )


def extend_horizons(db: Session, now: datetime) -> int:
    """Keep every running recurring schedule's occurrences stored a ``HORIZON`` ahead (``EXTEND_HORIZONS_TASK``);
    returns how many windows were added. Idempotent: a schedule already stored far enough is left alone."""
    until = now + HORIZON
    due = list(
        db.scalars(
            select(Schedule)
            .where(
                Schedule.at_each_session.is_(False),
                Schedule.ended_at.is_(None),
                Schedule.generated_until < until,
            )
            .order_by(Schedule.id)
            .with_for_update(skip_locked=True)
        )
    )
    added = 0
    for schedule in due:
        zone = ZoneInfo(schedule.timezone)
        opening_from = schedule.generated_until or start_of_day(_starts_on(schedule), zone)
        added += _generate(db, schedule, zone, opening_from=opening_from, now=now)
    db.flush()
    return added


def extend_horizons_task(run: JobRun) -> None:
    """The task function of ``EXTEND_HORIZONS_TASK``: ``extend_horizons`` in a transaction of its own."""
    with Session(run.engine) as db, db.begin():
        extend_horizons(db, utcnow())


def list_schedules(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, limit: int, offset: int
) -> list[Schedule]:
    return list(
        db.scalars(
            select(Schedule)
            .where(Schedule.clinic_id == clinic_id, Schedule.patient_id == patient_id)
            .order_by(Schedule.created_at, Schedule.id)
            .limit(limit)
            .offset(offset)
        )
    )


def get_schedule(db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
    schedule = db.scalar(
        select(Schedule).where(
            Schedule.id == schedule_id, Schedule.clinic_id == clinic_id, Schedule.patient_id == patient_id
        )
    )
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id} for this patient")
    return schedule


def end_schedule(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, schedule_id: uuid.UUID, now: datetime
) -> Schedule:
    """End a schedule today: no window opens after today (``ends_on``), and its occurrences not yet open are
    cancelled. What was due, completed, declined or missed stays as it was. A schedule is ended once (409)."""
    schedule = get_schedule(db, clinic_id=clinic_id, patient_id=patient_id, schedule_id=schedule_id)
    if schedule.ended_at is not None:
        raise Conflict(f"schedule {schedule_id} was already ended")
    today = local_day(now, ZoneInfo(schedule.timezone))
    schedule.ended_at = now
    schedule.ends_on = today if schedule.ends_on is None else min(schedule.ends_on, today)
    db.execute(
        update(AssessmentOccurrence)
        .where(
            AssessmentOccurrence.schedule_id == schedule.id,
            AssessmentOccurrence.state == OPEN,
            AssessmentOccurrence.due_from > now,
        )
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    return schedule


def schedule_read(schedule: Schedule) -> ScheduleRead:
    return ScheduleRead.model_validate(schedule)


# --- occurrences -------------------------------------------------------------------------------------------------


def list_occurrences(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID | None,
    status: str | Sequence[str] | None,
    instrument: str | None,
    due_from_after: datetime | None,
    due_from_before: datetime | None,
    now: datetime,
    limit: int,
    offset: int,
) -> list[AssessmentOccurrence]:
    """Occurrences of one patient (or the whole clinic's), oldest window first, filtered by the status they have at
    ``now`` (one status, or any of several), instrument, and ``due_from`` within [due_from_after, due_from_before]."""
    query = select(AssessmentOccurrence).where(AssessmentOccurrence.clinic_id == clinic_id)
    if patient_id is not None:
        query = query.where(AssessmentOccurrence.patient_id == patient_id)
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        for one in wanted:
            if one not in STATUSES:
                raise InvalidInput(
                    "unknown status", errors=[FieldError("status", "unknown status", one, list(STATUSES))]
                )
        query = query.where(or_(*(status_condition(one, now) for one in wanted)))
    if instrument is not None:
        query = query.where(AssessmentOccurrence.instrument_id == instrument)
    if due_from_after is not None:
        query = query.where(AssessmentOccurrence.due_from >= due_from_after)
    if due_from_before is not None:
        query = query.where(AssessmentOccurrence.due_from <= due_from_before)
    query = query.order_by(AssessmentOccurrence.due_from, AssessmentOccurrence.instrument_id, AssessmentOccurrence.id)
    return list(db.scalars(query.limit(limit).offset(offset)))


def get_occurrence(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, occurrence_id: uuid.UUID
) -> AssessmentOccurrence:
    found = db.scalar(
        select(AssessmentOccurrence).where(
            AssessmentOccurrence.id == occurrence_id,
            AssessmentOccurrence.clinic_id == clinic_id,
            AssessmentOccurrence.patient_id == patient_id,
        )
    )
    if found is None:
        raise NotFound(f"no assessment {occurrence_id} for this patient")
    return found


def decline(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    occurrence_id: uuid.UUID,
    reason: str,
    actor: str,
    key_id: uuid.UUID | None,
    now: datetime,
) -> AssessmentOccurrence:
    """Record that the patient will not answer this occurrence (said by the patient or their clinician): only a due
    or missed one (``windows.DECLINABLE``), else 409. Declined is not missed: adherence counts it apart."""
    occurrence = get_occurrence(db, clinic_id=clinic_id, patient_id=patient_id, occurrence_id=occurrence_id)
    status = status_at(occurrence, now)
    if status not in DECLINABLE:
        raise Conflict(
            f"assessment {occurrence_id} is {status}: only a due or missed assessment can be declined",
            assessment_status=status,
            declinable=sorted(DECLINABLE),
        )
    result = db.execute(
        update(AssessmentOccurrence)
        .where(
            AssessmentOccurrence.id == occurrence.id,
            AssessmentOccurrence.state == OPEN,
            AssessmentOccurrence.due_from <= now,
        )
        .values(state=DECLINED, declined_at=now, decline_reason=reason, declined_by=actor, declined_by_key_id=key_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:  # completed or declined by a concurrent request since it was read
        raise Conflict(f"assessment {occurrence_id} is no longer open")
    db.refresh(occurrence)
    return occurrence


def to_read(occurrence: AssessmentOccurrence, now: datetime) -> AssessmentRead:
    return AssessmentRead(
        id=occurrence.id,
        schedule_id=occurrence.schedule_id,
        session_id=occurrence.session_id,
        instrument=occurrence.instrument_id,
        due_from=occurrence.due_from,
        due_by=occurrence.due_by,
        status=cast(Status, status_at(occurrence, now)),
        measurement_id=occurrence.measurement_id,
        decline=_decline(occurrence),
    )


def _decline(occurrence: AssessmentOccurrence) -> Decline | None:
    if occurrence.declined_at is None:
        return None
    actor: Any = occurrence.declined_by
    return Decline(reason=occurrence.decline_reason, actor=actor, at=occurrence.declined_at)
