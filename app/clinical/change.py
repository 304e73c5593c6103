"""Reliable change and clinical significance (Jacobson & Truax 1991), and the fixed-threshold convention.

Pure functions over numbers and parameters; no database, no web. The formulas and the category rules follow the
reference implementation named in ``change-analytics.md`` §3 (R package clinicalsignificance):

- SE = SD_clin·√(1 − r), S_diff = √(2·SE²), RCI = (x₂ − x₁)/S_diff; reliable when |RCI| > 1.96.
- Fixed threshold (NHS Talking Therapies): reliable when the change is at least the published number of points.
- Cut-offs: a = M_clin + d·2·SD_clin, b = M_func − d·2·SD_func,
  c = (SD_clin·M_func + SD_func·M_clin)/(SD_clin + SD_func), with d = +1 when higher is better and −1 when lower
  is better. A computed cut-off (a, b, c) is strict on both sides, as in the package: a score exactly on it is
  neither clinical nor functional. A published caseness cut-off (PHQ-9 ≥ 10) counts a score on it as caseness, and
  every other score as functional.
- Categories: recovered = clinical at baseline, functional at the latest and reliably improved; improved = reliably
  improved but not recovered; harmed = not clinical at baseline, not functional at the latest and reliably worse;
  deteriorated = reliably worse but not harmed; unchanged otherwise. Recovered and harmed need a cut-off.
- Response (a reduction of at least ``response_reduction`` of the baseline) and remission (the latest below
  ``remission_below``) are defined only for lower-is-better scores and only for patients who were cases at baseline
  by a published caseness cut-off (``cutoff_type`` caseness): the PHQ-9 at 10 or more (NHS Talking Therapies;
  Kroenke 2001; CMS159's index "PHQ-9 > 9"). The references give response and remission rules for the PHQ-9 only
  (``change-analytics.md`` §3.2, ``clinical-feedback.md``); the GAD-7's caseness cut-off (8) has no response or
  remission rule there, and no other instrument has a caseness cut-off in them. Otherwise both are null, and
  ``response_reason`` / ``remission_reason`` say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

RCI_CUTOFF = 1.96
"""|RCI| above this is reliable change (p < .05, two-sided)."""


class Method(StrEnum):
    JACOBSON_TRUAX = "jacobson_truax"
    FIXED_THRESHOLD = "fixed_threshold"


class CutoffType(StrEnum):
    CASENESS = "caseness"
    """A published caseness cut-off: a score at or beyond it (on the worse side) is a case."""
    A = "a"
    B = "b"
    C = "c"


class Category(StrEnum):
    RECOVERED = "recovered"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    DETERIORATED = "deteriorated"
    HARMED = "harmed"


CATEGORY_ORDER = tuple(Category)


@dataclass(frozen=True)
class Parameters:
    """Everything one method needs for one score; ``citations`` maps a parameter name to its source."""

    method: Method
    source: str
    """``default`` (shipped, scoring-decisions.md) or ``clinic`` (set by the clinic's admin)."""
    reliability: float | None = None
    clinical_mean: float | None = None
    clinical_sd: float | None = None
    functional_mean: float | None = None
    functional_sd: float | None = None
    cutoff_type: CutoffType | None = None
    caseness_cutoff: float | None = None
    minimum_change: float | None = None
    response_reduction: float | None = None
    """Response = a reduction of at least this fraction of the baseline (0.5 = 50 %); lower-is-better scores only."""
    remission_below: float | None = None
    """Remission = the latest score below this value; lower-is-better scores only."""
    citations: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Evidence] = field(default_factory=dict)
    """For shipped defaults: how well each parameter is supported (``defaults.py``); a clinic's own carry none."""


class ReliabilityKind(StrEnum):
    INTERNAL_CONSISTENCY = "internal_consistency"
    """Cronbach's α: what many applications use (Wiger & Solberg variant, Evans et al.)."""
    TEST_RETEST = "test_retest"
    """What Jacobson & Truax (1991) used (``change-analytics.md`` §3.1, "Choice of reliability")."""


@dataclass(frozen=True)
class Evidence:
    """The support a shipped parameter has in the references: the sources that give the value, whether
    ``instruments-sources.md`` counts it confirmed (two or more sources agree), and for a reliability which kind."""

    sources: tuple[str, ...]
    confirmed: bool
    reliability_kind: ReliabilityKind | None = None
    note: str | None = None


@dataclass(frozen=True)
class MissingParameter:
    name: str
    needed_for: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    difference: float
    standard_error_of_measurement: float | None
    standard_error_of_difference: float | None
    rci: float | None
    reliable_change_threshold: float | None
    """The smallest raw change that is reliable (1.96·S_diff, or the fixed threshold)."""
    reliably_improved: bool | None
    reliably_deteriorated: bool | None
    cutoff: float | None
    caseness_baseline: bool | None
    caseness_latest: bool | None
    category: Category | None
    response: bool | None
    remission: bool | None
    missing: tuple[MissingParameter, ...]
    response_reason: str | None = None
    """Why ``response`` is null (None when it is not)."""
    remission_reason: str | None = None
    """Why ``remission`` is null (None when it is not)."""


HIGHER_IS_BETTER = "defined only for scores where lower is better"
NO_CASENESS_CUTOFF = (
    "defined only for patients who were cases at baseline, and this score has no caseness cut-off (none in the "
    "references for it, and none set by the clinic)"
)
NOT_A_CASE = "defined only for patients who were cases at baseline; the baseline score is below the caseness cut-off"
ZERO_BASELINE = "a reduction is undefined from a baseline of 0"


def _missing(name: str) -> str:
    return f"parameter {name} is missing"


def sign(direction: str) -> int:
    """+1 when higher is better, −1 when lower is better (the package's ``direction``)."""
    return 1 if direction == "higher_is_better" else -1


def standard_error_of_measurement(sd_clinical: float, reliability: float) -> float:
    return sd_clinical * math.sqrt(1 - reliability)


def standard_error_of_difference(se_measurement: float) -> float:
    return math.sqrt(2 * se_measurement**2)


def cutoff_value(parameters: Parameters, d: int) -> float | None:
    p = parameters
    match p.cutoff_type:
        case CutoffType.CASENESS:
            return p.caseness_cutoff
        case CutoffType.A if p.clinical_mean is not None and p.clinical_sd is not None:
            return p.clinical_mean + d * 2 * p.clinical_sd
        case CutoffType.B if p.functional_mean is not None and p.functional_sd is not None:
            return p.functional_mean - d * 2 * p.functional_sd
        case CutoffType.C:
            m_clin, sd_clin, m_func, sd_func = p.clinical_mean, p.clinical_sd, p.functional_mean, p.functional_sd
            if m_clin is not None and sd_clin is not None and m_func is not None and sd_func is not None:
                return (sd_clin * m_func + sd_func * m_clin) / (sd_clin + sd_func)
    return None


def is_clinical(score: float, cutoff: float, cutoff_type: CutoffType, d: int) -> bool:
    if cutoff_type is CutoffType.CASENESS:
        return _at_most(d * score, d * cutoff)
    return _below(d * score, d * cutoff)


def is_functional(score: float, cutoff: float, cutoff_type: CutoffType, d: int) -> bool:
    if cutoff_type is CutoffType.CASENESS:
        return not is_clinical(score, cutoff, cutoff_type, d)
    return _below(d * cutoff, d * score)


_CHANGE_OUTPUTS = ("rci", "reliable_change_threshold", "category")
_CUTOFF_OUTPUTS = ("caseness_baseline", "caseness_latest", "recovered", "harmed")
_CUTOFF_NEEDS = {
    CutoffType.CASENESS: ("caseness_cutoff",),
    CutoffType.A: ("clinical_mean", "clinical_sd"),
    CutoffType.B: ("functional_mean", "functional_sd"),
    CutoffType.C: ("clinical_mean", "clinical_sd", "functional_mean", "functional_sd"),
}


def missing_parameters(parameters: Parameters | None, method: Method, direction: str) -> tuple[MissingParameter, ...]:
    """Which parameters are missing, and which outputs stay null without them.

    Response and remission are defined for lower-is-better scores only, so they are never missing elsewhere.
    """
    p = parameters or Parameters(method=method, source="none")
    needed: dict[str, tuple[str, ...]] = {}

    def need(name: str, outputs: tuple[str, ...]) -> None:
        if getattr(p, name) is None:
            needed[name] = needed.get(name, ()) + outputs

    for name in ("reliability", "clinical_sd") if method is Method.JACOBSON_TRUAX else ("minimum_change",):
        need(name, _CHANGE_OUTPUTS)
    need("cutoff_type", _CUTOFF_OUTPUTS)
    for name in _CUTOFF_NEEDS[p.cutoff_type] if p.cutoff_type else ():
        need(name, _CUTOFF_OUTPUTS)
    if sign(direction) == -1:
        need("response_reduction", ("response",))
        need("remission_below", ("remission",))
        # Both are given only for cases at baseline: they need the caseness cut-off too.
        need("cutoff_type", ("response", "remission"))
        if p.cutoff_type is CutoffType.CASENESS:
            need("caseness_cutoff", ("response", "remission"))
    return tuple(MissingParameter(name, outputs) for name, outputs in needed.items())


def assess(
    baseline: float, latest: float, *, direction: str, method: Method, parameters: Parameters | None
) -> Assessment:
    """Compare two scores of the same key and version family; every output the parameters do not allow is null."""
    d = sign(direction)
    difference = latest - baseline
    missing = missing_parameters(parameters, method, direction)
    p = parameters or Parameters(method=method, source="none")

    se = s_diff = rci = threshold = None
    improved = deteriorated = None
    if method is Method.JACOBSON_TRUAX and p.reliability is not None and p.clinical_sd is not None:
        se = standard_error_of_measurement(p.clinical_sd, p.reliability)
        s_diff = standard_error_of_difference(se)
        rci = difference / s_diff
        threshold = RCI_CUTOFF * s_diff
        improved = d * rci > RCI_CUTOFF
        deteriorated = d * rci < -RCI_CUTOFF
    elif method is Method.FIXED_THRESHOLD and p.minimum_change is not None:
        threshold = p.minimum_change
        improved = _at_most(p.minimum_change, d * difference)
        deteriorated = _at_most(p.minimum_change, -d * difference)

    cutoff = cutoff_value(p, d)
    caseness_baseline = caseness_latest = functional_latest = None
    if cutoff is not None and p.cutoff_type is not None:
        caseness_baseline = is_clinical(baseline, cutoff, p.cutoff_type, d)
        caseness_latest = is_clinical(latest, cutoff, p.cutoff_type, d)
        functional_latest = is_functional(latest, cutoff, p.cutoff_type, d)

    case_at_baseline = caseness_baseline if p.cutoff_type is CutoffType.CASENESS else None
    response_reason = _outcome_reason(d, case_at_baseline, "response_reduction", p.response_reduction)
    if response_reason is None and baseline <= 0:
        response_reason = ZERO_BASELINE
    remission_reason = _outcome_reason(d, case_at_baseline, "remission_below", p.remission_below)
    return Assessment(
        difference=difference,
        standard_error_of_measurement=se,
        standard_error_of_difference=s_diff,
        rci=rci,
        reliable_change_threshold=threshold,
        reliably_improved=improved,
        reliably_deteriorated=deteriorated,
        cutoff=cutoff,
        caseness_baseline=caseness_baseline,
        caseness_latest=caseness_latest,
        category=_category(improved, deteriorated, caseness_baseline, functional_latest),
        response=None if response_reason else _response(baseline, latest, d, p.response_reduction),
        remission=None if remission_reason else _remission(latest, d, p.remission_below),
        missing=missing,
        response_reason=response_reason,
        remission_reason=remission_reason,
    )


def _outcome_reason(d: int, case_at_baseline: bool | None, name: str, value: float | None) -> str | None:
    """Why response or remission cannot be given (None when it can): direction, parameter, then caseness."""
    if d != -1:
        return HIGHER_IS_BETTER
    if value is None:
        return _missing(name)
    if case_at_baseline is None:
        return NO_CASENESS_CUTOFF
    return None if case_at_baseline else NOT_A_CASE


def _category(
    improved: bool | None,
    deteriorated: bool | None,
    clinical_baseline: bool | None,
    functional_latest: bool | None,
) -> Category | None:
    if improved is None or deteriorated is None:
        return None
    has_cutoff = clinical_baseline is not None and functional_latest is not None
    if improved:
        return Category.RECOVERED if has_cutoff and clinical_baseline and functional_latest else Category.IMPROVED
    if deteriorated:
        harmed = has_cutoff and not clinical_baseline and not functional_latest
        return Category.HARMED if harmed else Category.DETERIORATED
    return Category.UNCHANGED


def _response(baseline: float, latest: float, d: int, reduction: float | None) -> bool | None:
    """A reduction of at least ``reduction`` × baseline; defined for lower-is-better scores with a positive baseline."""
    if reduction is None or d != -1 or baseline <= 0:
        return None
    return _at_most(latest, baseline * (1 - reduction))


def _remission(latest: float, d: int, below: float | None) -> bool | None:
    if below is None or d != -1:
        return None
    return _below(latest, below)


def _at_most(a: float, b: float) -> bool:
    """a ≤ b, forgiving floating-point noise (prorated and mean scores are not exact binary fractions)."""
    return a < b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _below(a: float, b: float) -> bool:
    """a < b, and not merely by floating-point noise."""
    return a < b and not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
