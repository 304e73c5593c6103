"""Score one administration of an instrument: ``score(definition, answers) -> ScoreResult``.

The function is pure: same definition and answers, same result. It validates every answer against the definition
(unknown item numbers and values outside an item's options are errors, never ignored) and then computes each score
in definition order, so composites can use the scores before them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.scoring.definition import (
    Band,
    InstrumentDefinition,
    Item,
    MissingPolicy,
    Rule,
    Score,
)

Answer = int | str | None
"""An item answer as a client sends it: an integer option value, a coded option such as ``"2a"``, or null."""

DECLARED_TOTAL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AnswerError:
    """One invalid answer: which item, what was sent, and what would have been accepted."""

    item: str
    value: object
    message: str
    allowed: tuple[int | str, ...] = ()


class InvalidAnswers(ValueError):
    """The answers do not fit the instrument; nothing may be scored or stored."""

    def __init__(self, instrument_id: str, errors: list[AnswerError]) -> None:
        super().__init__(f"{len(errors)} invalid answer(s) for {instrument_id}")
        self.instrument_id = instrument_id
        self.errors = errors


@dataclass(frozen=True)
class ScoreValue:
    value: float | int | None
    band: str | None
    prorated: bool
    missing_items: tuple[str, ...]


@dataclass(frozen=True)
class ScoringWarning:
    code: str
    message: str
    details: dict[str, float | int | str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    instrument: str
    version: str
    complete: bool
    missing_items: tuple[str, ...]
    scores: dict[str, ScoreValue]
    flags: tuple[str, ...]
    warnings: tuple[ScoringWarning, ...]
    item_scores: dict[str, int]
    """Numeric score of each answered item (BDI-II ``"2a"`` → 2), before any reversal."""


def score(
    definition: InstrumentDefinition,
    answers: Mapping[str, Answer],
    *,
    declared_total: float | None = None,
) -> ScoreResult:
    """Validate ``answers`` against ``definition`` and compute every score, band, flag and warning.

    Raises:
        InvalidAnswers: an item number outside the instrument, or a value that is not one of the item's options.
    """
    item_scores = _validate(definition, answers)
    missing = tuple(item.number for item in definition.scored_items if item.number not in item_scores)

    scores: dict[str, ScoreValue] = {}
    for spec in definition.scores:
        if spec.rule in (Rule.SUM, Rule.MEAN):
            scores[spec.key] = _item_score(definition, spec, item_scores)
        else:
            scores[spec.key] = _composite_score(definition, spec, scores)

    return ScoreResult(
        instrument=definition.id,
        version=definition.version,
        complete=not missing,
        missing_items=missing,
        scores=scores,
        flags=_flags(definition, item_scores),
        warnings=_declared_total_warnings(definition, scores, declared_total),
        item_scores=item_scores,
    )


def _validate(definition: InstrumentDefinition, answers: Mapping[str, Answer]) -> dict[str, int]:
    items = {item.number: item for item in definition.items}
    errors: list[AnswerError] = []
    item_scores: dict[str, int] = {}
    for number, value in answers.items():
        item = items.get(number)
        if item is None:
            errors.append(
                AnswerError(
                    item=number,
                    value=value,
                    message=f'{definition.short_name} has no item "{number}"; items are "1" to "{len(items)}"',
                )
            )
            continue
        if value is None:
            continue
        numeric = _option_score(definition, item, value)
        if numeric is None:
            allowed = tuple(option.value for option in definition.options_for(item))
            errors.append(
                AnswerError(
                    item=number,
                    value=value,
                    message=_not_allowed(number, value, allowed),
                    allowed=allowed,
                )
            )
        elif item.scored:
            item_scores[number] = numeric
    if errors:
        raise InvalidAnswers(definition.id, errors)
    return item_scores


def _option_score(definition: InstrumentDefinition, item: Item, value: int | str) -> int | None:
    for option in definition.options_for(item):
        # bool is an int subclass in Python: True must never pass for 1.
        if type(option.value) is type(value) and option.value == value:
            return option.numeric_score
    return None


def _not_allowed(number: str, value: int | str, allowed: tuple[int | str, ...]) -> str:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    described = _describe(allowed)
    if isinstance(value, int) and "–" in described:
        return f'item "{number}" = {shown} is outside {described}'
    return f'item "{number}" = {shown} is not one of the allowed values {described}'


def _describe(allowed: tuple[int | str, ...]) -> str:
    ints = [value for value in allowed if isinstance(value, int)]
    if len(ints) == len(allowed) and ints == list(range(min(ints), max(ints) + 1)):
        return f"{min(ints)}–{max(ints)}"
    return ", ".join(repr(value) if isinstance(value, str) else str(value) for value in allowed)


def _reversal_sum(definition: InstrumentDefinition, number: str) -> int:
    item = next(item for item in definition.items if item.number == number)
    values = [option.numeric_score for option in definition.options_for(item)]
    return min(values) + max(values)


def _item_score(definition: InstrumentDefinition, spec: Score, item_scores: Mapping[str, int]) -> ScoreValue:
    assert spec.missing is not None  # guaranteed by Score's validator for item rules
    reversed_items = set(spec.reverse_items)
    answered = [
        _reversal_sum(definition, number) - item_scores[number] if number in reversed_items else item_scores[number]
        for number in spec.items
        if number in item_scores
    ]
    missing = tuple(number for number in spec.items if number not in item_scores)
    prorated = False
    value: float | int | None
    if not missing:
        value = sum(answered) if spec.rule is Rule.SUM else sum(answered) / len(answered)
    elif spec.missing.policy is MissingPolicy.PRORATE and len(missing) <= spec.missing.max_missing:
        value = sum(answered) * len(spec.items) / len(answered)
        prorated = True
    else:
        value = None
    return ScoreValue(value=value, band=_band(spec.bands, value), prorated=prorated, missing_items=missing)


def _composite_score(definition: InstrumentDefinition, spec: Score, scores: Mapping[str, ScoreValue]) -> ScoreValue:
    parts: list[float | int] = []
    prorated = False
    missing: list[str] = []
    for component in spec.components:
        part = scores[component.score]
        missing.extend(number for number in part.missing_items if number not in missing)
        prorated = prorated or part.prorated
        if part.value is None:
            continue
        if component.reverse:
            source = definition.score(component.score)
            parts.append(source.minimum + source.maximum - part.value)
        else:
            parts.append(part.value)
    value: float | int | None
    if len(parts) < len(spec.components):
        value = None
    elif spec.rule is Rule.SUM_OF_SCORES:
        value = sum(parts)
    else:
        value = sum(parts) / len(parts)
    return ScoreValue(value=value, band=_band(spec.bands, value), prorated=prorated, missing_items=tuple(missing))


def _band(bands: tuple[Band, ...], value: float | None) -> str | None:
    if value is None:
        return None
    label = None
    for band in bands:
        if value > band.lower or (band.lower_inclusive and value == band.lower):
            label = band.label
    return label


def _flags(definition: InstrumentDefinition, item_scores: Mapping[str, int]) -> tuple[str, ...]:
    raised: list[str] = []
    for flag in definition.flags:
        if flag.item not in item_scores:
            if flag.missing_flag is not None:
                raised.append(flag.missing_flag)
        elif item_scores[flag.item] >= flag.at_least:
            raised.append(flag.key)
    return tuple(raised)


def _declared_total_warnings(
    definition: InstrumentDefinition,
    scores: Mapping[str, ScoreValue],
    declared_total: float | None,
) -> tuple[ScoringWarning, ...]:
    if declared_total is None:
        return ()
    if definition.primary_score is None:
        return (
            ScoringWarning(
                code="declared_total_not_comparable",
                message=f"{definition.short_name} has no single total; the declared total was stored, not compared",
                details={"declared": declared_total},
            ),
        )
    computed = scores[definition.primary_score].value
    if computed is not None and abs(computed - declared_total) <= DECLARED_TOTAL_TOLERANCE:
        return ()
    return (
        ScoringWarning(
            code="declared_total_mismatch",
            message=(
                f"the declared {definition.primary_score} ({declared_total}) differs from the computed one "
                f"({computed}); the computed score is used"
            ),
            details={"declared": declared_total, "computed": computed, "score": definition.primary_score},
        ),
    )
