"""A client's resource as we keep it (verbatim) and as we serve it back: under our id, version and update time."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def as_served(
    raw: str | dict[str, Any], *, resource_type: str, logical_id: str, version_id: int, updated_at: datetime
) -> dict[str, Any]:
    """The received JSON (as text, or already parsed: left unchanged) with ``id`` and ``meta.versionId``/
    ``meta.lastUpdated`` set by the server."""
    data = json.loads(raw) if isinstance(raw, str) else dict(raw)
    data.pop("resourceType", None)
    data.pop("id", None)
    meta = data.pop("meta", None)
    meta = {
        **(meta if isinstance(meta, dict) else {}),
        "versionId": str(version_id),
        "lastUpdated": updated_at.isoformat(),
    }
    return {"resourceType": resource_type, "id": logical_id, "meta": meta, **data}
