"""The Task mapping on its own (no database): a derived status changes ``lastModified`` when the window opens or
closes, and the ``status`` search reads Task codes back into ours."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from app.fhir.errors import InvalidSearch
from app.fhir.task_mapping import Linked, searched_statuses, task

CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OPENS = datetime(2026, 11, 6, tzinfo=UTC)
CLOSES = datetime(2026, 11, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Occurrence:
    id: uuid.UUID = uuid.UUID(int=1)
    clinic_id: uuid.UUID = uuid.UUID(int=2)
    patient_id: uuid.UUID = uuid.UUID(int=3)
    instrument_id: str = "scs_sf"
    state: str = "open"
    due_from: datetime = OPENS
    due_by: datetime = CLOSES
    created_at: datetime = CREATED
    completed_at: datetime | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = None


@pytest.mark.parametrize(
    ("now", "status", "last_modified"),
    [
        (datetime(2026, 11, 2, tzinfo=UTC), "requested", CREATED),
        (datetime(2026, 11, 7, tzinfo=UTC), "ready", OPENS),
        (datetime(2026, 11, 12, tzinfo=UTC), "failed", CLOSES),
    ],
)
def test_an_open_assessment_changes_when_its_window_opens_and_closes(
    now: datetime, status: str, last_modified: datetime
) -> None:
    found = task(Occurrence(), now, Linked())

    assert (found.status, found.lastModified) == (status, last_modified)


def test_the_questionnaire_input_is_the_instruments_canonical_url() -> None:
    found = task(Occurrence(), CREATED, Linked())

    assert [item.valueCanonical for item in found.input or []] == ["urn:compassion-outcomes:questionnaire:scs_sf"]


def test_a_declined_assessment_completed_after_all_is_completed_without_a_reason() -> None:
    answered = Occurrence(
        state="completed",
        declined_at=datetime(2026, 11, 7, tzinfo=UTC),
        decline_reason="not this week",
        completed_at=datetime(2026, 11, 8, tzinfo=UTC),
    )

    found = task(answered, datetime(2026, 11, 12, tzinfo=UTC), Linked(observation_id="abc-total"))

    assert (found.status, found.statusReason, found.lastModified) == (
        "completed",
        None,
        datetime(2026, 11, 8, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("value", "ours"),
    [
        ("ready", ["due"]),
        ("failed,rejected", ["missed", "declined"]),
        ("http://hl7.org/fhir/task-status|requested", ["scheduled"]),
        ("on-hold,draft", []),
        ("ready,ready", ["due"]),
    ],
)
def test_status_search_codes_map_back_to_ours(value: str, ours: list[str]) -> None:
    assert searched_statuses(value) == ours


@pytest.mark.parametrize("value", ["due", "", "ready,", "http://example.org|ready", "READY"])
def test_anything_but_a_task_status_code_is_refused(value: str) -> None:
    with pytest.raises(InvalidSearch) as refused:
        searched_statuses(value)

    assert refused.value.status == 400
    assert "allowed: requested, ready, completed, rejected, failed, cancelled" in refused.value.detail
