"""The scoring service: resolve an instrument, score answers, and translate the outcome for storage and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from app.core.errors import FieldError, InvalidInput
from app.instruments.registry import InstrumentRegistry
from app.instruments.schemas import InstrumentSummary, ScoreOut, ScoreResponse, WarningOut
from app.scoring import SCORER_VERSION
from app.scoring.definition import InstrumentDefinition
from app.scoring.engine import Answer, InvalidAnswers, ScoreResult, score


def score_answers(
    definition: InstrumentDefinition,
    items: Mapping[str, Answer],
    *,
    declared_total: float | None = None,
) -> ScoreResult:
    try:
        return score(definition, items, declared_total=declared_total)
    except InvalidAnswers as exc:
        raise InvalidInput(
            f"{len(exc.errors)} invalid answer(s) for {definition.short_name}; nothing was stored",
            errors=[
                FieldError(
                    field=f"items.{error.item}",
                    message=error.message,
                    value=error.value,
                    allowed=list(error.allowed) or None,
                )
                for error in exc.errors
            ],
        ) from exc


def score_response(definition: InstrumentDefinition, result: ScoreResult) -> ScoreResponse:
    return ScoreResponse(
        instrument=result.instrument,
        version=result.version,
        scorer_version=SCORER_VERSION,
        complete=result.complete,
        missing_items=list(result.missing_items),
        scores=scores_out(definition, stored_scores(result)),
        flags=list(result.flags),
        warnings=[WarningOut(**asdict(warning)) for warning in result.warnings],
    )


def stored_scores(result: ScoreResult) -> dict[str, dict[str, object]]:
    """The JSON stored with a measurement: value, band, prorated and missing items per score key."""
    return {
        key: {
            "value": value.value,
            "band": value.band,
            "prorated": value.prorated,
            "missing_items": list(value.missing_items),
        }
        for key, value in result.scores.items()
    }


def stored_warnings(result: ScoreResult) -> list[dict[str, object]]:
    return [asdict(warning) for warning in result.warnings]


def scores_out(definition: InstrumentDefinition, stored: Mapping[str, Mapping[str, object]]) -> dict[str, ScoreOut]:
    out: dict[str, ScoreOut] = {}
    for spec in definition.scores:
        if spec.key in stored:
            out[spec.key] = ScoreOut.model_validate(
                {
                    **stored[spec.key],
                    "direction": spec.direction.value,
                    "minimum": spec.minimum,
                    "maximum": spec.maximum,
                }
            )
    return out


def scores_values(definition: InstrumentDefinition, stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``scores_out`` as plain values, with no model (``app.measurements.service.read_values``): the same JSON."""
    out: dict[str, Any] = {}
    for spec in definition.scores:
        if spec.key in stored:
            score = stored[spec.key]
            value = score["value"]
            out[spec.key] = {
                "value": float(value) if value.__class__ is bool else value,  # as pydantic reads `float | int`
                "band": score.get("band"),
                "prorated": score.get("prorated", False),
                "missing_items": score.get("missing_items", []),
                "direction": spec.direction.value,
                "minimum": float(spec.minimum),
                "maximum": float(spec.maximum),
            }
    return out


def summaries(registry: InstrumentRegistry) -> list[InstrumentSummary]:
    return [summary(registry.get(instrument_id)) for instrument_id in registry.ids()]


def summary(definition: InstrumentDefinition) -> InstrumentSummary:
    return InstrumentSummary(
        id=definition.id,
        name=definition.name,
        short_name=definition.short_name,
        version=definition.version,
        item_count=len(definition.items),
        scored_item_count=len(definition.scored_items),
        licence=definition.licence.summary,
        text_shippable=definition.licence.text_shippable,
        score_keys=[spec.key for spec in definition.scores],
    )
