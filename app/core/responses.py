"""A handler's answer already serialised, for a route that declares ``response_model`` (its OpenAPI schema) and
returns the bytes itself: ``json_response`` for a model the handler built, ``values_response`` for plain values."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel


def json_response(model: BaseModel) -> Response:
    """``model`` as the JSON FastAPI would send for it, serialised once, straight to bytes.

    Returned from a handler, it skips FastAPI's own handling of a returned model: validating it again against the
    route's ``response_model`` (for a sync handler, in one more threadpool hand-off) before serialising it. The route
    still declares ``response_model=`` for its OpenAPI schema; the model given here must be an instance of it, built
    and validated by the handler.
    """
    return Response(model.__pydantic_serializer__.to_json(model, by_alias=True), media_type="application/json")


def values_response(values: Any) -> Response:
    """``values`` (dicts with text keys, lists, text, numbers, booleans, None, UUIDs, datetimes, enums) as JSON, with
    no model built: for a large answer read from the database, where building and validating a model per row costs
    more than everything else the request does.

    Written as pydantic writes the same values (``values_json``). The values must be those the route's
    ``response_model`` would hold after validation (a ``float`` field's value a float, its keys in the model's field
    order, its defaults filled in): a test of the route's builder proves its JSON byte-identical to the model's.
    """
    return Response(values_json(values), media_type="application/json")


def values_json(values: Any) -> bytes:
    """JSON as pydantic writes it: no spaces, text as UTF-8, floats as their shortest round-tripping text, NaN and
    infinities as null, datetimes in ISO 8601 with ``Z`` for UTC."""
    return orjson.dumps(values, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _uuid_text(value: Any) -> str:
    """A UUID of a type of its own (asyncpg's), which orjson does not know."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
