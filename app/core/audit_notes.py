"""What a request's work tells the audit trail that its route, status and inserted rows cannot: the parts of one
request that each have an outcome of their own (a Bundle's entries), and the patient a request read when neither
its path nor its query names one (``$extract``'s response).

Services note them on the request's session (``db.info``), so they need neither the request nor the audit
package; the audit trail (``app.audit.service``) writes one event per note, in the request's transaction when it
commits, or with the refusal when it fails. A note survives a savepoint rolled back: a failed entry is audited too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

_NOTES = "audit.entry_notes"


@dataclass(frozen=True)
class EntryNote:
    """One part of a request with its own outcome: its status, the resource it addressed and the patient it is
    about (only a patient of the caller's clinic, verified; ``None`` when the entry named none or another's)."""

    index: int
    """Its place in the request (``Bundle.entry[index]``)."""
    status_code: int
    method: str
    resource_type: str | None
    resource_id: str | None
    patient_id: uuid.UUID | None


def note_entry(db: Session, note: EntryNote) -> None:
    db.info.setdefault(_NOTES, []).append(note)


def entry_notes(db: Session) -> list[EntryNote]:
    """The live list of the session's notes (the audit trail takes it when the transaction opens)."""
    notes: list[EntryNote] = db.info.setdefault(_NOTES, [])
    return notes


_READ = "audit.patients_read"


def note_patient_read(db: Session, patient_id: uuid.UUID) -> None:
    """A patient of the caller's clinic (verified) whose data a request read without naming it in its path or
    query, nor storing anything of it: the patient a ``$extract`` response is about."""
    db.info.setdefault(_READ, []).append(patient_id)


def patients_read(db: Session) -> list[uuid.UUID]:
    """The live list of the patients noted read on the session (the audit trail takes it when the transaction
    opens)."""
    read: list[uuid.UUID] = db.info.setdefault(_READ, [])
    return read


_LINKS = "audit.report_links"


@dataclass(frozen=True)
class LinkUse:
    """A report link presented to open its report (``app.clinical.report_links``): the link, its clinic and its
    patient. The request has no key, so this is how its event names who the access was granted by and about whom,
    whether the link was honoured or refused (expired, revoked). Never the token."""

    link_id: uuid.UUID
    clinic_id: uuid.UUID
    patient_id: uuid.UUID


def note_link_use(db: Session, use: LinkUse) -> None:
    db.info.setdefault(_LINKS, []).append(use)


def links_used(db: Session) -> list[LinkUse]:
    """The live list of the report links noted on the session (the audit trail takes it when the transaction
    opens)."""
    used: list[LinkUse] = db.info.setdefault(_LINKS, [])
    return used
