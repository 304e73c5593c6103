"""A handler's answer already serialised: a route that declares ``response_model`` and returns ``json_response``."""

from __future__ import annotations

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
