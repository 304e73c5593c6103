"""Assessment reminders at a local receiver: ``assessment.due`` when a window opens, ``assessment.overdue`` the lead
time before it closes unanswered, each once per assessment, never for a closed window, quiet hours respected in the
schedule's time zone, and a receiver that was down reached once it is back.

The clock is frozen in 2031 (ahead of the real time, as procrastinate's workers take due jobs by the server's clock)
and moved; jobs run through ``run_jobs`` (the SQLite runner, or a procrastinate worker), never by waiting. A new
schedule defers its own reminders run; later runs are deferred by ``remind``, as the periodic job would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical import reminders
from app.core.datetimes import CLOCK
from app.core.state import state_of
from tests.care.conftest import assessments, measure, new_schedule, ok
from tests.clinical.conftest import AllowPrivate, Receiver, deliveries, phq9, running_receiver, set_webhook
from tests.conftest import ClinicKeys, run_jobs

WEDNESDAY = datetime(2031, 3, 5, 10, 0, tzinfo=UTC)
"""11:00 in Oslo (CET, UTC+1): the tests' first "now"."""
TODAY = "2031-03-05"
OPENS, CLOSES = "2031-03-04T23:00:00Z", "2031-03-07T23:00:00Z"
"""A window opening today in Oslo for three days: from local midnight to local midnight."""
OVERDUE_AT = datetime(2031, 3, 6, 23, 0, tzinfo=UTC)
"""24 hours (REMINDER_OVERDUE_LEAD_HOURS' default) before that window closes."""


@pytest.fixture
def clock() -> Iterator[datetime]:
    with CLOCK.frozen_at(WEDNESDAY):
        yield WEDNESDAY


def weekly(**change: Any) -> dict[str, Any]:
    body = {"instruments": ["phq9"], "starts_on": TODAY, "every_days": 7, "window_days": 3, "timezone": "Europe/Oslo"}
    return body | change


def remind(app: FastAPI, at: datetime) -> None:
    """Move the clock to ``at`` and run reminders then (as the periodic job does), with the jobs they cause."""
    CLOCK.move_to(at)
    with state_of(app).write_sessions() as db, db.begin():
        reminders.raise_soon(db)
    run_jobs(app, now=at)


def events(receiver: Receiver) -> list[tuple[str, str]]:
    """(event, assessment id) of each call the receiver answered, in order."""
    return [(payload["event"], payload["assessment_id"]) for _headers, payload in receiver.calls]


def test_a_new_schedules_open_window_raises_one_due_delivery_at_once(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    set_webhook(client, clinic, receiver.url)

    schedule = new_schedule(client, clinic, patient_id, **weekly())
    run_jobs(app, now=clock)
    first_run = list(receiver.calls)
    remind(app, clock + timedelta(minutes=1))
    remind(app, clock + timedelta(hours=1))

    [opened, *_later] = assessments(client, clinic, patient_id)
    [(headers, payload)] = first_run
    assert payload == {
        "event": "assessment.due",
        "clinic_id": str(clinic.id),
        "assessment_id": opened["id"],
        "patient_id": patient_id,
        "schedule_id": schedule["id"],
        "instrument": "phq9",
        "due_from": OPENS,
        "due_by": CLOSES,
    }
    assert (opened["due_from"], opened["due_by"], opened["status"]) == (OPENS, CLOSES, "due")
    assert headers["webhook-signature"].startswith("v1,")
    assert receiver.calls == first_run
    [delivery] = deliveries(app, clinic)
    assert (delivery.event, delivery.dedupe_key, delivery.status) == (
        "assessment.due",
        f"assessment.due:{opened['id']}",
        "delivered",
    )


def test_overdue_is_raised_once_the_lead_time_before_the_window_closes(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    set_webhook(client, clinic, receiver.url)
    new_schedule(client, clinic, patient_id, **weekly())
    run_jobs(app, now=clock)
    [opened, *_later] = assessments(client, clinic, patient_id)

    remind(app, OVERDUE_AT - timedelta(seconds=1))
    before = events(receiver)
    remind(app, OVERDUE_AT)
    remind(app, OVERDUE_AT + timedelta(hours=2))
    remind(app, datetime(2031, 3, 8, 12, 0, tzinfo=UTC))  # closed: missed, nothing more

    assert before == [("assessment.due", opened["id"])]
    assert events(receiver) == [("assessment.due", opened["id"]), ("assessment.overdue", opened["id"])]
    [_due, overdue] = deliveries(app, clinic)
    assert overdue.payload["due_by"] == CLOSES


def test_no_overdue_for_a_completed_or_declined_assessment(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    set_webhook(client, clinic, receiver.url)
    new_schedule(client, clinic, patient_id, **weekly(instruments=["phq9", "gad7", "fcs_from_others"]))
    run_jobs(app, now=clock)
    due_now = {item["instrument"]: item["id"] for item in assessments(client, clinic, patient_id, status="due")}
    measure(client, clinic, patient_id, "phq9", phq9(4), "2031-03-05T09:30:00Z")
    declined = client.post(
        f"/v1/patients/{patient_id}/assessments/{due_now['gad7']}/decline",
        json={"reason": "travelling"},
        headers=clinic.headers(),
    )

    remind(app, OVERDUE_AT)

    assert ok(declined)["status"] == "declined"
    statuses = {item["instrument"]: item["status"] for item in assessments(client, clinic, patient_id, status="due")}
    assert statuses == {"fcs_from_others": "due"}
    overdue = [assessment for event, assessment in events(receiver) if event == "assessment.overdue"]
    assert overdue == [due_now["fcs_from_others"]]
    assert sorted(assessment for event, assessment in events(receiver) if event == "assessment.due") == sorted(
        due_now.values()
    )


def test_windows_closed_before_the_schedule_existed_raise_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    """A schedule backdated eight weeks: its eight past windows read missed, and only today's is reminded of."""
    set_webhook(client, clinic, receiver.url)

    new_schedule(client, clinic, patient_id, **weekly(starts_on="2031-01-08"))
    run_jobs(app, now=clock)
    remind(app, OVERDUE_AT)

    missed = assessments(client, clinic, patient_id, status="missed")
    [current] = assessments(client, clinic, patient_id, status="due")
    assert len(missed) == 8
    assert events(receiver) == [("assessment.due", current["id"]), ("assessment.overdue", current["id"])]


def test_nothing_is_raised_for_a_clinic_without_a_webhook_nor_later_for_its_past_windows(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    """Reminders are raised when their moment comes; a webhook set afterwards gets only those still to come."""
    new_schedule(client, clinic, patient_id, **weekly())
    run_jobs(app, now=clock)
    set_webhook(client, clinic, receiver.url)

    remind(app, OVERDUE_AT)

    [current, *_later] = assessments(client, clinic, patient_id)
    assert events(receiver) == [("assessment.overdue", current["id"])]


QUIET = {"start": "22:00", "end": "07:00"}


def test_quiet_hours_postpone_a_reminder_to_their_end_in_the_schedules_time_zone(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    """Oslo's clocks go forward at 02:00 on Sunday 2031-03-30: a window opening at that day's midnight (23:00 UTC,
    in quiet hours) is reminded of at 07:00 summer time, 05:00 UTC (not 06:00, as 07:00 was the day before)."""
    ok(
        client.put(
            "/v1/clinic/settings",
            json={"webhook_url": receiver.url, "reminder_quiet_hours": QUIET},
            headers=clinic.headers(Role.ADMIN),
        )
    )
    CLOCK.move_to(datetime(2031, 3, 29, 12, 0, tzinfo=UTC))
    new_schedule(client, clinic, patient_id, **weekly(starts_on="2031-03-30"))
    run_jobs(app, now=CLOCK.now())
    not_yet_open = len(deliveries(app, clinic))

    remind(app, datetime(2031, 3, 29, 23, 0, tzinfo=UTC))
    [waiting] = deliveries(app, clinic)
    run_jobs(app, now=datetime(2031, 3, 30, 4, 59, 59, tzinfo=UTC))
    held = len(receiver.calls)
    CLOCK.move_to(datetime(2031, 3, 30, 5, 0, tzinfo=UTC))
    run_jobs(app, now=CLOCK.now())

    assert not_yet_open == 0
    assert (waiting.event, waiting.status) == ("assessment.due", "pending")
    assert waiting.next_attempt_at == datetime(2031, 3, 30, 5, 0, tzinfo=UTC)
    assert held == 0
    [(_headers, payload)] = receiver.calls
    assert (payload["event"], payload["due_from"]) == ("assessment.due", "2031-03-29T23:00:00Z")


def test_a_reminder_held_by_quiet_hours_is_withdrawn_when_the_patient_answers_meanwhile(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    """The window opens at Oslo's midnight, in quiet hours until 07:00; the patient answers at 06:30 local: the
    waiting reminder is not sent, and the delivery says why."""
    ok(
        client.put(
            "/v1/clinic/settings",
            json={"webhook_url": receiver.url, "reminder_quiet_hours": QUIET},
            headers=clinic.headers(Role.ADMIN),
        )
    )
    new_schedule(client, clinic, patient_id, **weekly(starts_on="2031-03-06"))
    remind(app, datetime(2031, 3, 5, 23, 0, tzinfo=UTC))
    [waiting] = deliveries(app, clinic)
    CLOCK.move_to(datetime(2031, 3, 6, 5, 30, tzinfo=UTC))
    measure(client, clinic, patient_id, "phq9", phq9(0), "2031-03-06T06:30:00+01:00")
    CLOCK.move_to(datetime(2031, 3, 6, 6, 0, tzinfo=UTC))
    run_jobs(app, now=CLOCK.now())

    assert (waiting.event, waiting.status) == ("assessment.due", "pending")
    [withdrawn] = deliveries(app, clinic)
    assert (withdrawn.status, withdrawn.attempts, withdrawn.next_attempt_at) == ("withdrawn", 0, None)
    assert receiver.calls == []
    listed = ok(client.get("/v1/clinic/webhook-deliveries?status=withdrawn", headers=clinic.headers(Role.ADMIN)))
    assert [item["id"] for item in listed["items"]] == [str(withdrawn.id)]


def test_a_reminder_whose_quiet_hours_outlast_its_window_is_not_sent(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, receiver: Receiver, clock: datetime
) -> None:
    """A one-day window (Oslo's Wednesday) and quiet hours from 12:00 to 06:00: its due reminder goes at once (11:00
    local); its overdue one falls at the window's midpoint, 12:00, and the quiet hours end only after it closed."""
    ok(
        client.put(
            "/v1/clinic/settings",
            json={"webhook_url": receiver.url, "reminder_quiet_hours": {"start": "12:00", "end": "06:00"}},
            headers=clinic.headers(Role.ADMIN),
        )
    )
    new_schedule(client, clinic, patient_id, **weekly(window_days=1))
    run_jobs(app, now=clock)
    remind(app, datetime(2031, 3, 5, 11, 0, tzinfo=UTC))
    remind(app, datetime(2031, 3, 5, 22, 59, tzinfo=UTC))
    remind(app, datetime(2031, 3, 6, 5, 0, tzinfo=UTC))

    [due] = deliveries(app, clinic)
    assert (due.event, due.status, due.delivered_at) == ("assessment.due", "delivered", clock)
    assert [event for event, _assessment in events(receiver)] == ["assessment.due"]


def test_a_receiver_that_was_down_gets_its_reminder_once_it_is_back(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    allow_private_networks: AllowPrivate,
    clock: datetime,
) -> None:
    allow_private_networks(True)
    with running_receiver() as gone:
        url, port = gone.url, gone.port
    set_webhook(client, clinic, url)

    new_schedule(client, clinic, patient_id, **weekly())
    run_jobs(app, now=clock)
    [failed_once] = deliveries(app, clinic)
    with running_receiver(port=port) as back:
        assert failed_once.next_attempt_at is not None
        CLOCK.move_to(failed_once.next_attempt_at)
        run_jobs(app, now=failed_once.next_attempt_at)
        calls = list(back.calls)

    assert (failed_once.status, failed_once.attempts, failed_once.last_status) == ("pending", 1, None)
    [(_headers, payload)] = calls
    assert payload["event"] == "assessment.due"
    [delivered] = deliveries(app, clinic)
    assert (delivered.status, delivered.attempts) == ("delivered", 2)


@pytest.mark.parametrize(
    ("quiet", "detail"),
    [
        ({"start": "22:00", "end": "22:00"}, "must differ"),
        ({"start": "22:00+01:00", "end": "07:00"}, "without an offset"),
        ({"start": "25:00", "end": "07:00"}, ""),
        ({"start": "22:00"}, ""),
        ({"start": "22:00", "end": "07:00", "zone": "Europe/Oslo"}, ""),
    ],
)
def test_invalid_quiet_hours_are_refused_naming_the_field(
    client: TestClient, clinic: ClinicKeys, quiet: dict[str, str], detail: str
) -> None:
    response = client.put(
        "/v1/clinic/settings", json={"reminder_quiet_hours": quiet}, headers=clinic.headers(Role.ADMIN)
    )

    assert response.status_code == 422, response.text
    fields = {error["field"]: error["detail"] for error in response.json()["errors"]}
    assert any(field.startswith("reminder_quiet_hours") for field in fields), fields
    assert any(detail in message for message in fields.values()), fields
    assert ok(client.get("/v1/clinic/settings", headers=clinic.headers(Role.ADMIN)))["reminder_quiet_hours"] is None


def test_quiet_hours_are_read_back_and_cleared_with_the_settings(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)

    written = ok(client.put("/v1/clinic/settings", json={"reminder_quiet_hours": QUIET}, headers=admin))
    read = ok(client.get("/v1/clinic/settings", headers=admin))
    cleared = ok(client.put("/v1/clinic/settings", json={}, headers=admin))

    assert written["reminder_quiet_hours"] == read["reminder_quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    assert cleared["reminder_quiet_hours"] is None
