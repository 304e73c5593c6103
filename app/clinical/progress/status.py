"""A course's progress status at each measurement (pure): from an expected-response table, or from the reliable
change rule when there is none.

Statuses, in the order they are decided:

1. ``insufficient_data``: only the baseline is measured, or the rule lacks the parameters it needs.
2. ``reliable_deterioration``: the latest score is reliably worse than the baseline (``app.clinical.change``, with the
   clinic's or the shipped change parameters). Judged from the second measurement on: it needs no expected path.
3. ``recovered``: a case at baseline, not a case now, and reliably improved (the change endpoint's category).
4. ``not_on_track`` / ``on_track``:
   - with a table, the latest score outside its band on the worse side (above it for a lower-is-better score) is off
     track, anything else on track;
   - with no table (or beyond the table's weeks, or in another version family), the **reliable change rule**, built
     only from reliable change and the instrument's cut-off: still a case and not reliably improved is off track,
     anything else on track.

   Off track is ``not_on_track`` only from the ``MIN_MEASUREMENTS``-th scored measurement (baseline included): before
   it the status is ``insufficient_data`` (provisional, with the early sign in ``reasons``), because late responders
   change little until about session 6 (``clinical-feedback.md``); on track before it is ``on_track``, provisional.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.clinical.change import Assessment, Category, Method, Parameters, assess
from app.clinical.progress.expected import Band, ExpectedResponse

MIN_MEASUREMENTS = 6
"""Scored measurements (the baseline included) before a course can be judged ``not_on_track``: a course measured at
each session reaches it at session 6, where the late-responding depression class of ``clinical-feedback.md`` starts
to change. Measured less often, the wait is longer in time, which errs towards not alarming."""


class Status(StrEnum):
    ON_TRACK = "on_track"
    NOT_ON_TRACK = "not_on_track"
    RELIABLE_DETERIORATION = "reliable_deterioration"
    RECOVERED = "recovered"
    INSUFFICIENT_DATA = "insufficient_data"


class MethodKind(StrEnum):
    EXPECTED_RESPONSE_TABLE = "expected_response_table"
    RELIABLE_CHANGE_RULE = "reliable_change_rule"


@dataclass(frozen=True)
class Observation:
    measurement_id: uuid.UUID
    measured_at: datetime
    value: float


@dataclass(frozen=True)
class PointProgress:
    measurement_id: uuid.UUID
    measured_at: datetime
    value: float
    weeks: float
    """Weeks since the baseline."""
    expected: float | None
    lower: float | None
    upper: float | None
    band: Band | None
    band_reason: str | None
    """Why ``band`` is null (the baseline, no table, beyond the table's weeks)."""
    change: Category | None
    """Change from the baseline (the change endpoint's category); null for the baseline or without parameters."""


@dataclass(frozen=True)
class Judgement:
    status: Status
    provisional: bool
    method: MethodKind
    reasons: tuple[str, ...]
    points: tuple[PointProgress, ...]


@dataclass(frozen=True)
class Rule:
    """What the status needs besides the scores."""

    direction: str
    short_name: str
    change_method: Method
    parameters: Parameters | None
    table: ExpectedResponse | None
    table_note: str | None = None
    """Why no table applies although the clinic has one (another version family), shown in ``reasons``."""


def judge(observations: Sequence[Observation], rule: Rule) -> Judgement:
    """The status after the latest measurement, with every point's band."""
    points = evaluate(observations, rule)
    if not points:
        method = MethodKind.EXPECTED_RESPONSE_TABLE if rule.table is not None else MethodKind.RELIABLE_CHANGE_RULE
        return Judgement(Status.INSUFFICIENT_DATA, False, method, ("no scored measurement",), ())
    return _judge(points, len(points) - 1, rule)


def history(observations: Sequence[Observation], rule: Rule) -> list[Status]:
    """The status after each measurement in turn."""
    points = evaluate(observations, rule)
    return [_judge(points, index, rule, with_points=False).status for index in range(len(points))]


def turned_not_on_track(observations: Sequence[Observation], rule: Rule) -> int | None:
    """Where the course turned not on track: the index of the measurement from which its status stays
    ``not_on_track`` through the latest one; None if the latest status is another."""
    points = evaluate(observations, rule)
    turned = len(points)
    while turned > 0 and _judge(points, turned - 1, rule, with_points=False).status is Status.NOT_ON_TRACK:
        turned -= 1
    return turned if turned < len(points) else None


def evaluate(observations: Sequence[Observation], rule: Rule) -> list[tuple[PointProgress, Assessment | None]]:
    if not observations:
        return []
    baseline = observations[0]
    result: list[tuple[PointProgress, Assessment | None]] = []
    assessed: dict[float, Assessment] = {}  # by score, against the one baseline: scores repeat, each assessed once
    for index, observation in enumerate(observations):
        weeks = (observation.measured_at - baseline.measured_at).total_seconds() / (7 * 86400)
        assessment = None
        if index > 0:
            assessment = assessed.get(observation.value)
            if assessment is None:
                assessment = assessed[observation.value] = assess(
                    baseline.value,
                    observation.value,
                    direction=rule.direction,
                    method=rule.change_method,
                    parameters=rule.parameters,
                )
        expected = lower = upper = None
        band: Band | None = None
        if index == 0:
            reason: str | None = "the baseline: what is expected later is conditioned on it"
        elif rule.table is None:
            reason = rule.table_note or "no expected-response table for this score: judged by the reliable change rule"
        elif not rule.table.covers(weeks):
            reason = f"beyond the table's range ({rule.table.max_weeks:g} weeks after the baseline)"
        else:
            prediction = rule.table.predict(baseline.value, weeks)
            expected, lower, upper = prediction.expected, prediction.lower, prediction.upper
            band, reason = prediction.band(observation.value), None
        point = PointProgress(
            measurement_id=observation.measurement_id,
            measured_at=observation.measured_at,
            value=observation.value,
            weeks=weeks,
            expected=expected,
            lower=lower,
            upper=upper,
            band=band,
            band_reason=reason,
            change=assessment.category if assessment else None,
        )
        result.append((point, assessment))
    return result


def _judge(
    evaluated: list[tuple[PointProgress, Assessment | None]], index: int, rule: Rule, *, with_points: bool = True
) -> Judgement:
    """The status after measurement ``index``; ``with_points=False`` leaves the points out of the judgement (judging
    every measurement of a long course in turn would otherwise copy its points each time)."""
    points = tuple(point for point, _ in evaluated[: index + 1]) if with_points else ()
    n = index + 1
    latest, assessment = evaluated[index]
    by_table = latest.band is not None
    method = MethodKind.EXPECTED_RESPONSE_TABLE if rule.table is not None else MethodKind.RELIABLE_CHANGE_RULE
    early = n < MIN_MEASUREMENTS
    reasons: list[str] = []
    if rule.table_note:
        reasons.append(rule.table_note)

    def done(status: Status, *why: str, provisional: bool = False) -> Judgement:
        return Judgement(status, provisional, method, (*reasons, *why), points)

    if assessment is None:
        return done(Status.INSUFFICIENT_DATA, "only the baseline is measured: progress needs a later measurement")
    baseline = evaluated[0][0].value
    change = f"{latest.value:g} at {latest.weeks:.1f} weeks against a baseline of {baseline:g}"
    if assessment.reliably_deteriorated:
        threshold = assessment.reliable_change_threshold or 0.0
        return done(
            Status.RELIABLE_DETERIORATION,
            f"{change}: reliably worse (a change of {assessment.difference:+g}; reliable from {threshold:.2f} points)",
        )
    if assessment.category is Category.RECOVERED:
        return done(Status.RECOVERED, f"{change}: reliably improved and no longer a case")

    if by_table:
        off_track = _worse(latest.band, rule.direction)
        side = "above" if latest.band == "high" else "below"
        if off_track:
            sign = f"{change}: {side} the expected band ({latest.lower:.1f}–{latest.upper:.1f})"
        else:
            sign = f"{change}: within or better than the expected band ({latest.lower:.1f}–{latest.upper:.1f})"
    else:
        if rule.table is not None and latest.band_reason:
            reasons.append(f"no expected band: {latest.band_reason}; judged by the reliable change rule")
        if assessment.reliably_improved is None:
            return done(
                Status.INSUFFICIENT_DATA,
                f"the reliable change rule needs change parameters for {rule.short_name}, and there are none",
            )
        if assessment.caseness_latest is None:
            return done(
                Status.INSUFFICIENT_DATA,
                f"the reliable change rule needs a cut-off for {rule.short_name}, and there is none",
            )
        off_track = assessment.caseness_latest and not assessment.reliably_improved
        if off_track:
            sign = f"{change}: still a case (cut-off {assessment.cutoff:g}) and not reliably improved"
        elif assessment.reliably_improved:
            sign = f"{change}: reliably improved"
        else:
            sign = f"{change}: not a case (cut-off {assessment.cutoff:g})"
    if not off_track:
        if early:
            return done(Status.ON_TRACK, sign, _early(n), provisional=True)
        return done(Status.ON_TRACK, sign)
    if early:
        return done(Status.INSUFFICIENT_DATA, sign, _early(n), provisional=True)
    return done(Status.NOT_ON_TRACK, sign)


def _early(n: int) -> str:
    return (
        f"measurement {n} of the course: not on track is judged from measurement {MIN_MEASUREMENTS} "
        "(late responders change little until about session 6)"
    )


def _worse(band: Band | None, direction: str) -> bool:
    return band == ("high" if direction == "lower_is_better" else "low")


def is_flagged(status: Status) -> bool:
    """A status that asks for the therapist's attention."""
    return status in (Status.NOT_ON_TRACK, Status.RELIABLE_DETERIORATION)
