from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission
from app.auth.service import Principal
from app.clinical import recording
from app.core.lifecycle import AppRoute, Db
from app.core.problems import PROBLEM_RESPONSES
from app.idempotency.service import Idempotent
from app.instruments import service, text
from app.instruments.dependencies import RegistryDep
from app.instruments.schemas import (
    InstrumentSummary,
    InstrumentTextLoad,
    InstrumentTextRead,
    RescoreResult,
    ScoreRequest,
    ScoreResponse,
)

router = APIRouter(route_class=AppRoute, prefix="/v1", tags=["instruments"], responses=PROBLEM_RESPONSES)


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
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
) -> dict[str, Any]:
    """The full definition (items, options and labels, scores, bands, flags), enough to render the form.

    Item wording the caller's clinic loaded from its own licence is merged in (``text_source: "clinic"``).
    """
    definition = registry.get(instrument_id)
    return text.clinic_view(db, clinic_id=principal.clinic_id, definition=definition)


@router.put("/instruments/{instrument_id}/text")
def load_instrument_text(
    instrument_id: str,
    body: InstrumentTextLoad,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_MANAGE)],
) -> InstrumentTextRead:
    """Load item wording and option labels from the clinic's licensed copy; only this clinic ever sees it."""
    row = text.load(
        db,
        clinic_id=principal.clinic_id,
        key_id=principal.key_id,
        definition=registry.get(instrument_id),
        data=body,
    )
    return text.to_read(row)


@router.get("/instruments/{instrument_id}/text")
def get_instrument_text(
    instrument_id: str,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_READ)],
) -> InstrumentTextRead:
    """The wording this clinic loaded for the instrument (404 if none)."""
    registry.get(instrument_id)
    return text.to_read(text.get(db, clinic_id=principal.clinic_id, instrument_id=instrument_id))


@router.delete("/instruments/{instrument_id}/text", status_code=204)
def delete_instrument_text(
    instrument_id: str,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_MANAGE)],
) -> Response:
    """Remove the clinic's wording; the definition's own text (if any) is served again."""
    registry.get(instrument_id)
    text.delete(db, clinic_id=principal.clinic_id, instrument_id=instrument_id)
    return Response(status_code=204)


@router.post("/instruments/{instrument_id}/rescore", response_model=RescoreResult)
def rescore_instrument(
    instrument_id: str,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.INSTRUMENTS_MANAGE)],
    guard: Idempotent,
) -> Response:
    """Re-score the clinic's measurements stored under an older definition: each gets an amendment, never an edit."""
    definition = registry.get(instrument_id)
    rescored, already_current = recording.rescore(
        db,
        registry,
        clinic_id=principal.clinic_id,
        instrument_id=instrument_id,
        recorded_by_key_id=principal.key_id,
    )
    return guard.respond(
        RescoreResult(
            instrument=definition.id,
            version=definition.version,
            rescored=rescored,
            already_current=already_current,
        )
    )


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
