"""The version of what the server derives rather than stores (our instruments' Questionnaires, Patients, Tasks): a
digest of the resource as served, which changes exactly when the resource does. Pure: no web framework."""

from __future__ import annotations

import hashlib
import json
from typing import Any

CONTENT_VERSION_LENGTH = 16
"""Hex digits of a content version (64 bits of SHA-256: a collision between two states of one resource is
negligible)."""


def content_version(resource: dict[str, Any]) -> str:
    """A digest of the resource's JSON without ``meta``."""
    content = {key: value for key, value in resource.items() if key != "meta"}
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()[:CONTENT_VERSION_LENGTH]


def with_content_version(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with ``meta.versionId`` set to its content version."""
    meta = resource.get("meta")
    return {**resource, "meta": {**(meta if isinstance(meta, dict) else {}), "versionId": content_version(resource)}}
