"""A patient's series of one score as values: its points and their version families (pure).

Only scores of the same key and the same instrument version family (the MAJOR part of the definition version) are
ever compared; a series keeps the family of the patient's latest measurement. ``app.clinical.series`` reads them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.scoring.definition import InstrumentDefinition, Score


@dataclass(frozen=True)
class Point:
    measurement_id: uuid.UUID
    version: int
    instrument_version: str
    measured_at: datetime
    session_id: uuid.UUID | None
    session_number: int | None
    value: float | None
    band: str | None
    prorated: bool
    flags: tuple[str, ...]

    @property
    def family(self) -> str:
        return version_family(self.instrument_version)


@dataclass(frozen=True)
class Series:
    definition: InstrumentDefinition
    score: Score
    family: str | None
    points: tuple[Point, ...]
    """Points of ``family`` only, in time order; a point's value is null when the score could not be computed."""
    other_family_points: int

    @property
    def scored(self) -> tuple[Point, ...]:
        return tuple(point for point in self.points if point.value is not None)


def version_family(definition_version: str) -> str:
    return definition_version.split(".", 1)[0]


def in_family(definition: InstrumentDefinition, score: Score, points: list[Point], family: str | None = None) -> Series:
    """The points of one version family (default: the latest point's), and how many were left out."""
    family = family or (points[-1].family if points else None)
    kept = tuple(point for point in points if point.family == family)
    return Series(
        definition=definition,
        score=score,
        family=family,
        points=kept,
        other_family_points=len(points) - len(kept),
    )
