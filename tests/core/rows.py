"""Rows to insert in tests of the insert helpers: every column of an audit event, with text that needs escaping."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import ClinicKeys


def audit_row(clinic: ClinicKeys, id_: uuid.UUID, index: int) -> dict[str, Any]:
    return {
        "id": id_,
        "occurred_at": datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))) + timedelta(seconds=index),
        "clinic_id": clinic.id,
        "key_id": None,
        "role": "clinician",
        "action": "create",
        "method": "POST",
        "route": "/v1/te\tst\\N\n" if index % 2 else "/v1/test",
        "resource_type": "measurement",
        "resource_id": f"r{index}",
        "patient_id": None,
        "client_address": None,
        "status_code": 201,
        "outcome": "success",
        "details": {"created": index, "note": 'ü \\ "quoted"\ttab\nline'} if index % 2 else {},
    }
