from __future__ import annotations

from typing import Any

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
