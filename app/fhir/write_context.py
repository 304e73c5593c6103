"""One FHIR write's context: who writes, in which transaction, against which instruments, and how the client wants
the answer. The route builds it once; the Bundle, the interaction (``writes``) and the resource's module
(``questionnaire_responses``, ``patients``, ``registered_questionnaires``) all take it instead of a parameter list.

Reads take ``db`` and the clinic directly: only writes carry this much along.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.fhir.http import ReturnPreference
from app.fhir.validation_pool import ValidationPool
from app.idempotency.service import IdempotencyGuard
from app.instruments.registry import InstrumentRegistry

if TYPE_CHECKING:  # form_resolution imports registered_questionnaires, which takes a FhirWrite
    from app.fhir.form_resolution import ResolvedForm


@dataclass
class Lookups:
    """What scoring responses looks up again and again: the forms by reference and the clinic's patients found so
    far. One per write; a Bundle's entries share theirs."""

    forms: dict[str, ResolvedForm] = field(default_factory=dict)
    patients: set[uuid.UUID] = field(default_factory=set)
    """Patients of the caller's clinic (the Bundle's audit names only these, never a patient an entry merely named)."""
    per_entry: bool = False
    """A Bundle's: a lookup runs in a savepoint, so a reference the database refuses (a NUL) fails one entry only."""


@dataclass(frozen=True)
class FhirWrite:
    """A FHIR create or update (or a Bundle of them), as the route received it.

    A patient token's confinement to its own patient travels with ``principal`` (``principal.patient_id``).
    """

    db: Session
    """The request's transaction: writes flush, the route commits."""
    registry: InstrumentRegistry
    principal: Principal
    prefer: ReturnPreference | None = None
    """``Prefer: return=…``: what the reply (or each Bundle entry's response) carries."""
    guard: IdempotencyGuard | None = None
    """POSTs: the Idempotency-Key record the reply is kept under, so a retry replays it. None for PUTs."""
    validation: ValidationPool | None = None
    """Bundles: the worker processes that validate new responses ahead (None: each is validated where it runs)."""
    lookups: Lookups = field(default_factory=Lookups)

    def in_bundle(self) -> FhirWrite:
        """The same write for a Bundle's entries: fresh lookups, shared by the entries, each run in a savepoint."""
        return replace(self, lookups=Lookups(per_entry=True))
