"""Assessment occurrences as SDC Tasks (the SDC ``sdc-task`` profile: a Task asking for a Questionnaire to be
completed): pure, no web framework, no database.

- ``code`` = ``complete-questionnaire`` (SDC's temporary codes), ``intent`` = ``order``, ``for`` and ``owner`` = the
  patient (who answers), ``requester`` = the clinic (a logical Organization reference: the profile requires one).
- The form is the ``questionnaire`` input, the canonical URL our ``GET /fhir/Questionnaire`` serves for the
  instrument, unversioned (any version of the instrument completes it). ``focus`` is left out: the profile's
  invariant ``sdc-t1`` requires it absent when the code is ``complete-questionnaire``.
- ``restriction.period`` = the window [due_from, due_by).
- Once completed, ``output``: the QuestionnaireResponse the measurement was scored from (when it came in through
  FHIR: the profile's ``questionnaire-response`` output), and the measurement's headline Observation (its panel, else
  its primary score), since a measurement sent to the JSON API has no QuestionnaireResponse.
- ``status`` from ``app.care.windows.status_at``: scheduled → requested, due → ready, completed → completed,
  declined → rejected (``statusReason`` = the reason given), missed → failed, cancelled → cancelled.
- ``lastModified``: the last time the Task changed: created, completed, declined, its schedule ended (cancelled), or
  the moment its window opened (ready) or closed (failed) — a derived status changes with time, not with a write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fhir.resources.R4B.task import Task

from app.care.windows import CANCELLED, COMPLETED, DECLINED, DUE, MISSED, SCHEDULED, status_at
from app.fhir import codes
from app.fhir.content_version import with_content_version
from app.fhir.errors import InvalidSearch, Issue

FHIR_STATUS = {
    SCHEDULED: "requested",
    DUE: "ready",
    COMPLETED: "completed",
    DECLINED: "rejected",
    MISSED: "failed",
    CANCELLED: "cancelled",
}
"""Our status → the Task status it reads as (``../shared/reference/care-loop.md``)."""
CARE_STATUS = {fhir: ours for ours, fhir in FHIR_STATUS.items()}


class Occurrence(Protocol):
    """What a Task is made of (an ``AssessmentOccurrence`` row has these attributes)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def clinic_id(self) -> uuid.UUID: ...
    @property
    def patient_id(self) -> uuid.UUID: ...
    @property
    def instrument_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def due_from(self) -> datetime: ...
    @property
    def due_by(self) -> datetime: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def declined_at(self) -> datetime | None: ...
    @property
    def decline_reason(self) -> str | None: ...


@dataclass(frozen=True)
class Linked:
    """What a Task names beyond its occurrence, read by the caller: the completing measurement's response and
    Observation, and when its schedule ended (a cancelled one)."""

    response_id: str | None = None
    observation_id: str | None = None
    schedule_ended_at: datetime | None = None


def task(occurrence: Occurrence, now: datetime, linked: Linked) -> Task:
    """The occurrence as a Task, with the status it has at ``now``."""
    status = status_at(occurrence, now)
    patient = {"reference": f"Patient/{occurrence.patient_id}"}
    resource: dict[str, object] = {
        "resourceType": "Task",
        "id": str(occurrence.id),
        "meta": {"profile": [codes.SDC_TASK_PROFILE]},
        "status": FHIR_STATUS[status],
        "intent": "order",
        "code": {
            "coding": [
                {"system": codes.SDC_TEMP, "code": codes.COMPLETE_QUESTIONNAIRE, "display": "Complete Questionnaire"}
            ]
        },
        "for": patient,
        "owner": patient,
        "requester": {
            "type": "Organization",
            "identifier": {"system": codes.CLINIC_SYSTEM, "value": str(occurrence.clinic_id)},
        },
        "authoredOn": occurrence.created_at.isoformat(),
        "lastModified": _last_modified(occurrence, status, linked).isoformat(),
        "restriction": {"period": {"start": occurrence.due_from.isoformat(), "end": occurrence.due_by.isoformat()}},
        "input": [
            {
                "type": {"coding": [{"system": codes.SDC_TEMP, "code": codes.TASK_QUESTIONNAIRE_INPUT}]},
                "valueCanonical": codes.questionnaire_url(occurrence.instrument_id),
            }
        ],
    }
    if status == DECLINED and occurrence.decline_reason:
        resource["statusReason"] = {"text": occurrence.decline_reason}
    if status == COMPLETED:
        outputs = _outputs(linked)
        if outputs:
            resource["output"] = outputs
    return Task.model_validate(with_content_version(resource))


def _outputs(linked: Linked) -> list[dict[str, object]]:
    outputs: list[dict[str, object]] = []
    if linked.response_id is not None:
        outputs.append(
            {
                "type": {"coding": [{"system": codes.SDC_TEMP, "code": codes.TASK_RESPONSE_OUTPUT}]},
                "valueReference": {"reference": f"QuestionnaireResponse/{linked.response_id}"},
            }
        )
    if linked.observation_id is not None:
        outputs.append(
            {
                "type": {"text": "the measurement's score (Observation)"},
                "valueReference": {"reference": f"Observation/{linked.observation_id}"},
            }
        )
    return outputs


def _last_modified(occurrence: Occurrence, status: str, linked: Linked) -> datetime:
    moments = [occurrence.created_at, occurrence.completed_at, occurrence.declined_at]
    if status == DUE:
        moments.append(occurrence.due_from)
    elif status == MISSED:
        moments.append(occurrence.due_by)
    elif status == CANCELLED:
        moments.append(linked.schedule_ended_at)
    return max(moment for moment in moments if moment is not None)


def searched_statuses(value: str) -> list[str]:
    """Our statuses a ``status`` search asks for: Task status codes, comma-separated (any of them), each optionally
    ``system|code``. A TaskStatus code this server never gives a Task (``in-progress``…) matches nothing; a value
    that is no TaskStatus code is refused (400), naming the codes a Task here may have."""
    wanted: list[str] = []
    for token in (part.strip() for part in value.split(",")):
        system, separator, code = token.rpartition("|")
        if code not in codes.TASK_STATUSES or (separator and system not in ("", codes.TASK_STATUS_SYSTEM)):
            allowed = ", ".join(FHIR_STATUS.values())
            detail = f"status: {token!r} is not a Task status code (allowed: {allowed})"
            raise InvalidSearch(detail, issues=[Issue("invalid", detail)])
        if code in CARE_STATUS and CARE_STATUS[code] not in wanted:
            wanted.append(CARE_STATUS[code])
    return wanted
