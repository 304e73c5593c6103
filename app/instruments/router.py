from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.core.problems import PROBLEM_RESPONSES
from app.idempotency.service import Idempotent
from app.instruments import service
from app.instruments.dependencies import RegistryDep
from app.instruments.schemas import InstrumentSummary, ScoreRequest, ScoreResponse

router = APIRouter(prefix="/v1", tags=["instruments"], responses=PROBLEM_RESPONSES)


@router.get("/instruments")
def list_instruments(
    registry: RegistryDep,
    _principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
) -> list[InstrumentSummary]:
    """Every instrument the service scores, with its version and licence summary."""
    return service.summaries(registry)


@router.get("/instruments/{instrument_id}")
def get_instrument(
    instrument_id: str,
    registry: RegistryDep,
    _principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
) -> dict[str, Any]:
    """The full definition (items, options and labels, scores, bands, flags), enough to render the form."""
    return registry.get(instrument_id).model_dump(mode="json")


@router.post("/score/{instrument_id}", response_model=ScoreResponse)
def score_instrument(
    instrument_id: str,
    body: ScoreRequest,
    registry: RegistryDep,
    _principal: Annotated[Principal, requires(Permission.SCORE)],
    guard: Idempotent,
) -> Response:
    """Score answers without storing anything: scores, bands, flags, missing items and warnings."""
    definition = registry.get(instrument_id)
    result = service.score_answers(definition, body.items, declared_total=body.declared_total)
    return guard.respond(service.score_response(definition, result))
