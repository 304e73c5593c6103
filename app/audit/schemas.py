from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.core.schemas import Schema


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
    outcome: str
    details: dict[str, Any]
