from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.core.schemas import DeclaredTotal, ItemAnswers, Schema


class ScoreRequest(Schema):
    items: ItemAnswers
    declared_total: DeclaredTotal = None


class ScoreOut(BaseModel):
    value: float | int | None = Field(description="Null when too many of the score's items are missing.")
    band: str | None = None
    prorated: bool = False
    missing_items: list[str] = []
    direction: str
    minimum: float
    maximum: float


class WarningOut(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ScoreResponse(BaseModel):
    instrument: str
    version: str
    scorer_version: str
    complete: bool
    missing_items: list[str]
    scores: dict[str, ScoreOut]
    flags: list[str]
    warnings: list[WarningOut]


class InstrumentSummary(BaseModel):
    id: str
    name: str
    short_name: str
    version: str
    item_count: int
    scored_item_count: int
    licence: str
    text_shippable: bool
    score_keys: list[str]


LabelText = Annotated[str, Field(min_length=1, max_length=2000)]


class InstrumentTextLoad(Schema):
    """Wording from the clinic's own licensed copy; shown only to this clinic, never used for scoring."""

    licence_note: LabelText = Field(description="Under what licence the clinic holds this wording.")
    instructions: LabelText | None = None
    items: dict[Annotated[str, Field(max_length=10)], LabelText] = Field(
        min_length=1, max_length=200, description='Item text keyed by item number ("1", "2", …).'
    )
    option_labels: dict[Annotated[str, Field(max_length=50)], dict[Annotated[str, Field(max_length=10)], LabelText]] = (
        Field(default={}, description='Labels per option set and option value, e.g. {"default": {"0": "…"}}.')
    )


class InstrumentTextRead(BaseModel):
    instrument: str
    licence_note: str
    instructions: str | None
    items: dict[str, str]
    option_labels: dict[str, dict[str, str]]
    updated_at: datetime


class RescoreResult(BaseModel):
    instrument: str
    version: str
    rescored: int = Field(description="Measurements amended with a new version scored under `version`.")
    already_current: int = Field(description="Measurements already scored under `version`, left alone.")
