"""Shared helpers for the scoring tests: load the shipped definitions and build answer sets.

Expected values never come from here: each test writes its expected numbers out by hand, with the arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

from app.instruments.registry import InstrumentRegistry, load_registry
from app.scoring.definition import InstrumentDefinition
from app.scoring.engine import Answer, ScoreResult, score

SCALES_DIR = Path(__file__).resolve().parents[2] / "scales"

INSTRUMENT_IDS = ("phq9", "gad7", "scs", "scs_sf", "fcs_for_others", "fcs_from_others", "fcs_for_self", "fscrs", "bdi2")


@cache
def registry() -> InstrumentRegistry:
    return load_registry(SCALES_DIR)


def definition(instrument_id: str) -> InstrumentDefinition:
    return registry().get(instrument_id)


def numbered(values: Sequence[Answer], *, start: int = 1) -> dict[str, Answer]:
    """``[3, 0, 1]`` → ``{"1": 3, "2": 0, "3": 1}``: answers in published item order."""
    return {str(number): value for number, value in enumerate(values, start=start)}


def every(items: Iterable[int | str], value: Answer) -> dict[str, Answer]:
    """The same answer for each of ``items``."""
    return {str(number): value for number in items}


def without(answers: Mapping[str, Answer], *numbers: str) -> dict[str, Answer]:
    """``answers`` with ``numbers`` left out (absent, not null)."""
    return {number: value for number, value in answers.items() if number not in numbers}


def run(instrument_id: str, answers: Mapping[str, Answer], *, declared_total: float | None = None) -> ScoreResult:
    return score(definition(instrument_id), answers, declared_total=declared_total)


def value_of(result: ScoreResult, key: str) -> float | int | None:
    return result.scores[key].value
