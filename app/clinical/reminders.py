"""Assessment reminders: ``assessment.due`` when a window opens, ``assessment.overdue`` before it closes unanswered,
sent to the clinic's webhook (``webhooks.enqueue``); the clinic's own app or messaging service tells the patient.

``raise_reminders`` (task ``RAISE_TASK``: a periodic job every minute, and deferred at once by ``raise_soon`` when a
schedule is created) reads the open occurrences whose reminder moment has come and that have not had it yet, in
batches, one short transaction each:

- ``assessment.due``: the window has opened (``due_from <= now``).
- ``assessment.overdue``: ``REMINDER_OVERDUE_LEAD_HOURS`` before it closes, but not before its midpoint (so a short
  window does not get both at once), while the occurrence is still open (neither completed, declined nor
  cancelled: those are never reminded of).

Each occurrence records when each reminder was raised or passed over (``due_reminded_at``, ``overdue_reminded_at``);
a partial index on the open occurrences still waiting keeps the query to the few whose moment came. A window that
closed before its reminder could go (a schedule backdated eight weeks: its past windows) is passed over, never
reminded of. The delivery's ``dedupe_key`` (``<event>:<occurrence id>``, unique per clinic) makes each reminder
delivered once whatever runs at the same time (two workers, a run deferred by a new schedule and a periodic one).

Quiet hours (the clinic's ``reminder_quiet_hours``, read in the schedule's time zone): a reminder falling in them is
delivered at their end (``deliver_after``); one whose quiet hours end only after its window closed is passed over.
The delivery then goes even if the assessment was completed in the meantime: a receiver looks the assessment up
(``GET …/assessments``) before it disturbs the patient.

The payload is ids and times only, never answers: ``event``, ``clinic_id``, ``assessment_id``, ``patient_id``,
``schedule_id``, ``instrument``, ``due_from``, ``due_by``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from app.care.models import AssessmentOccurrence, Schedule
from app.care.windows import OPEN
from app.clinical import webhooks
from app.clinical.models import ClinicSettings
from app.clinical.quiet_hours import QuietHours
from app.core.datetimes import iso
from app.core.db import utcnow
from app.core.jobs import JobRun, defer

RAISE_TASK = "clinical.raise_reminders"
DUE = "assessment.due"
OVERDUE = "assessment.overdue"
EVENTS = (DUE, OVERDUE)
BATCH = 500
"""Occurrences read per transaction."""


def raise_soon(db: Session) -> None:
    """Defer a ``raise_reminders`` run at once, in ``db``'s transaction (none if one is waiting already): a new
    schedule's open window is reminded of without waiting for the next period."""
    defer(db, RAISE_TASK, queueing_lock=RAISE_TASK)


def raise_reminders(run: JobRun) -> None:
    """Raise every reminder whose moment has come (the task function of ``RAISE_TASK``)."""
    lead = timedelta(hours=run.settings.reminder_overdue_lead_hours)
    for event in EVENTS:
        after: uuid.UUID | None = None
        while True:
            with Session(run.engine) as db, db.begin():
                read, after = _raise_batch(db, event, now=utcnow(), lead=lead, after=after)
            if read < BATCH:
                break


def payload(event: str, occurrence: AssessmentOccurrence) -> dict[str, str]:
    """Ids and the window only: the receiver reads the rest through the API with its own key."""
    return {
        "event": event,
        "clinic_id": str(occurrence.clinic_id),
        "assessment_id": str(occurrence.id),
        "patient_id": str(occurrence.patient_id),
        "schedule_id": str(occurrence.schedule_id),
        "instrument": occurrence.instrument_id,
        "due_from": iso(occurrence.due_from),
        "due_by": iso(occurrence.due_by),
    }


def _pending(event: str, now: datetime, lead: timedelta) -> ColumnElement[bool]:
    """Open occurrences whose reminder ``event`` has not been raised and whose moment may have come (the partial
    indexes' conditions, then a range on the indexed column)."""
    occurrence = AssessmentOccurrence
    if event == DUE:
        return (occurrence.state == OPEN) & occurrence.due_reminded_at.is_(None) & (occurrence.due_from <= now)
    return (
        (occurrence.state == OPEN)
        & occurrence.overdue_reminded_at.is_(None)
        & (occurrence.due_by <= now + lead)
        & (occurrence.due_from <= now)
    )


def _raise_batch(
    db: Session, event: str, *, now: datetime, lead: timedelta, after: uuid.UUID | None
) -> tuple[int, uuid.UUID | None]:
    """One batch, in id order after ``after``: raise or pass over each; (rows read, the last id)."""
    query = (
        select(
            AssessmentOccurrence,
            Schedule.timezone,
            ClinicSettings.reminder_quiet_hours_start,
            ClinicSettings.reminder_quiet_hours_end,
            ClinicSettings.webhook_url,
        )
        .join(Schedule, Schedule.id == AssessmentOccurrence.schedule_id)
        .outerjoin(ClinicSettings, ClinicSettings.clinic_id == AssessmentOccurrence.clinic_id)
        .where(_pending(event, now, lead))
        .order_by(AssessmentOccurrence.id)
        .limit(BATCH)
        .with_for_update(of=AssessmentOccurrence, skip_locked=True)
    )
    if after is not None:
        query = query.where(AssessmentOccurrence.id > after)
    rows = db.execute(query).all()
    done: list[uuid.UUID] = []
    for occurrence, zone_name, quiet_start, quiet_end, url in rows:
        quiet = QuietHours(quiet_start, quiet_end) if quiet_start is not None and quiet_end is not None else None
        moment = _moment(event, occurrence, lead)
        if moment > now:
            continue  # an overdue reminder before the window's midpoint: a later run raises it
        deliver_after = quiet.end_after(now, ZoneInfo(zone_name)) if quiet is not None else None
        if url and (deliver_after or now) < occurrence.due_by:  # a clinic without a webhook is reminded of nothing
            webhooks.enqueue(
                db,
                clinic_id=occurrence.clinic_id,
                event=event,
                payload=payload(event, occurrence),
                dedupe_key=f"{event}:{occurrence.id}",
                deliver_after=deliver_after,
                url=url,
            )
        done.append(occurrence.id)
    if done:
        column = AssessmentOccurrence.due_reminded_at if event == DUE else AssessmentOccurrence.overdue_reminded_at
        db.execute(
            update(AssessmentOccurrence)
            .where(AssessmentOccurrence.id.in_(done))
            .values({column: now})
            .execution_options(synchronize_session=False)
        )
    return len(rows), rows[-1][0].id if rows else after


def _moment(event: str, occurrence: AssessmentOccurrence, lead: timedelta) -> datetime:
    """When the reminder falls: the window's opening, or ``lead`` before its closing but not before its midpoint."""
    if event == DUE:
        return occurrence.due_from
    midpoint = occurrence.due_from + (occurrence.due_by - occurrence.due_from) / 2
    return max(occurrence.due_by - lead, midpoint)
