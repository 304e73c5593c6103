from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from app.core.schemas import Schema

AuditOutcome = Literal["success", "unauthenticated", "forbidden", "not_found", "rejected", "error"]
"""What became of a request (``app.audit.service.outcome_of``): a 2xx/3xx, a refusal (401, 403, 404), another 4xx,
or a 5xx."""


class AuditEventRead(Schema):
    id: uuid.UUID
    occurred_at: datetime
    key_id: uuid.UUID | None
    role: str | None
    action: str
    method: str
    route: str
    resource_type: str | None
    resource_id: str | None
    patient_id: uuid.UUID | None
    client_address: str | None
    status_code: int
    outcome: AuditOutcome
    details: dict[str, Any]
