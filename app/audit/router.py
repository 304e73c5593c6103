from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEventRead, AuditOutcome
from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.lifecycle import AppRoute, Db
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.schemas import FilterTime, Page

router = APIRouter(route_class=AppRoute, prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("")
def list_audit_events(
    db: Db,
    principal: Annotated[Principal, requires(Permission.AUDIT_READ)],
    page: PageDep,
    patient_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
    action: Literal["read", "create", "update", "delete"] | None = None,
    outcome: AuditOutcome | None = None,
    since: Annotated[FilterTime | None, Query(alias="from")] = None,
    until: Annotated[FilterTime | None, Query(alias="to")] = None,
) -> Page[AuditEventRead]:
    """The clinic's audit trail, newest first: who read or changed which record, when, from where, with what outcome."""
    rows = service.list_events(
        db,
        clinic_id=principal.clinic_id,
        limit=page.limit + 1,
        offset=page.offset,
        patient_id=patient_id,
        key_id=key_id,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )
    return page.page(rows, AuditEventRead.model_validate)
