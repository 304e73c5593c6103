"""JSON request bodies parsed once, refusing an object that names the same key twice.

JSON allows duplicate names and Python's parser keeps the last; a clinical answer sent twice (``"valueInteger": 0,
"valueInteger": 3``) would be silently replaced. Every JSON body the service reads goes through ``loads_unique``:
the v1 API's (``UniqueKeysRequest``, which FastAPI's body parsing calls) and FHIR's (``app.fhir.request_body``).

The check is an ``object_pairs_hook``: one Python call per JSON object. It slows the parse of a large FHIR Bundle, a
small part of storing one, and costs little on a small body (bench/README.md, "Issue 18: speed machinery
re-measured").
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request


class DuplicateKey(json.JSONDecodeError):
    """An object names a key twice. A ``JSONDecodeError``, so every caller that refuses invalid JSON refuses it."""

    def __init__(self, key: str, doc: str) -> None:
        shown = key if len(key) <= 100 else key[:100] + "…"
        super().__init__(f"the key {shown!r} appears twice in one object", doc, 0)
        self.key = key


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


def loads_unique(text: str | bytes, **options: Any) -> Any:
    """``json.loads`` that raises ``DuplicateKey`` for an object naming a key twice."""
    try:
        return json.loads(text, object_pairs_hook=_unique, **options)
    except _Duplicate as duplicate:
        doc = text if isinstance(text, str) else ""
        raise DuplicateKey(duplicate.key, doc) from None


class UniqueKeysRequest(Request):
    """A request whose JSON body (``await request.json()``, as FastAPI reads a body parameter) refuses duplicate
    keys; FastAPI answers it as it does any invalid JSON (422 naming the body)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_unique(await self.body())
        return self._json
