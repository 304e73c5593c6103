"""Within-person lagged effects, exactly as ``change-analytics.md`` §4.2 specifies; pure (no database, no web).

Input is a panel: one row per patient-week, columns ``patient``, ``week`` (calendar week since the patient's first
measurement) and one column per variable. The steps:

1. **Calendar lags.** X_lag(i, t) = X(i, t − lag): the value of that calendar week, missing if it was not measured
   (never the previous row, which would mix 1-, 2- and 3-week gaps and attenuate the effects).
2. **Estimation sample.** Rows with the outcome and every lagged variable present; patients with fewer than 4 such
   rows are dropped and counted (detrending needs 3; 4 leaves 2 residual degrees of freedom).
3. **Per-patient detrending.** Each lagged variable, the outcome's own lag included, is residualised on the
   patient's own [1, week] over the rows kept (``*_w``); the person means of the lagged predictors (``*_pm``) are
   between-person terms.
4. **Model.** ``y ~ week + x_w… + y_lag_w + x_pm…`` with a random intercept and slope for week per patient
   (statsmodels MixedLM, REML). Because the ``*_w`` columns are orthogonal to each patient's [1, week], their
   estimates equal the within (fixed-effects) estimator's (§2.2); ``method="within"`` fits that directly, by OLS on
   detrended data with patient-clustered standard errors.
5. **Reporting.** The lagged outcome is a control: its coefficient carries dynamic-panel (Nickell) bias and is
   reported as not interpretable. Standardised within effects are β·SD(x_w)/SD(y_w) over the detrended residuals.
   Convergence and boundary warnings are surfaced, never swallowed. The naive pooled estimates come beside them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

Method = Literal["mixedlm", "within"]
Role = Literal["within", "autoregressive_control", "between", "pooled"]
Progress = Callable[[str], None]
"""Called with the name of each step as it starts (the CLI draws a progress bar from it)."""

MIN_ROWS_PER_PATIENT = 4
MIN_PATIENTS = 3
WITHIN_SD_FLOOR = 1e-9
Z_95 = NormalDist().inv_cdf(0.975)
STEPS = ("lagging by calendar week and detrending", "fitting the within-person model", "naive estimates")

NICKELL_NOTE = (
    "Control for autoregression only: a detrended lagged outcome carries dynamic-panel (Nickell) bias of order "
    "1/T, so this coefficient is not interpretable (change-analytics §4.4)."
)
BETWEEN_NOTE = (
    "Between-person term (person mean of the lagged predictor); person means from few occasions are unreliable "
    "and bias between-person effects toward zero."
)
NAIVE_NOTE = (
    "Naive estimates, for contrast only: pooled over patients and weeks as if every row were an independent person, "
    "so stable differences between patients and their improvement trends masquerade as effects. In simulations "
    "with a known mechanism (change-analytics §5.4) they point to the wrong predictor."
)


class InsufficientData(ValueError):
    """Too few usable patients or rows, or too little within-person variation, to fit the model."""


@dataclass(frozen=True)
class Estimate:
    predictor: str
    outcome: str
    role: Role
    estimate: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    standardized: float | None
    interpretable: bool
    note: str | None = None


@dataclass(frozen=True)
class Correlation:
    predictor: str
    outcome: str
    r: float | None
    n: int


@dataclass(frozen=True)
class Naive:
    note: str
    pooled_lagged: list[Estimate]
    pooled_lagged_with_outcome_lag: list[Estimate]
    correlations: list[Correlation]


@dataclass(frozen=True)
class Notice:
    code: str
    message: str


@dataclass(frozen=True)
class LaggedResult:
    effects: list[Estimate]
    between_effects: list[Estimate]
    n_patients: int
    n_observations: int
    dropped_patients: int
    specification: dict[str, Any]
    warnings: list[Notice]
    naive: Naive
    median_rows_per_patient: float = 0.0


@dataclass(frozen=True)
class _Prepared:
    panel: pd.DataFrame
    """Every patient-week, variables renamed to y, x1, …"""
    frame: pd.DataFrame
    lagged_all: pd.DataFrame
    """Rows with the outcome and every lag present, before patients with too few rows were dropped."""
    names: dict[str, str]
    """Internal column (y, x1, …) → variable name."""
    dropped_patients: int


def _safe(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def lag_by_calendar_week(panel: pd.DataFrame, columns: Sequence[str], lag: int) -> pd.DataFrame:
    """Each row gains ``<column>_lag`` = that column's value ``lag`` calendar weeks earlier (NaN if not measured)."""
    earlier = panel[["patient", "week", *columns]].copy()
    earlier["week"] = earlier["week"] + lag
    earlier = earlier.rename(columns={column: f"{column}_lag" for column in columns})
    return panel.merge(earlier, on=["patient", "week"], how="left")


def detrend(frame: pd.DataFrame, column: str) -> pd.Series:
    """Residuals of ``column`` on [1, week] within each patient (least squares, over the rows in ``frame``)."""
    groups = frame["patient"]
    week = frame["week"].astype(float)
    centred_week = week - week.groupby(groups).transform("mean")
    centred = frame[column] - frame[column].groupby(groups).transform("mean")
    slope = (centred_week * centred).groupby(groups).transform("sum") / (centred_week**2).groupby(groups).transform(
        "sum"
    )
    return centred - slope * centred_week


def prepare(panel: pd.DataFrame, *, outcome: str, predictors: Sequence[str], lag: int) -> _Prepared:
    if panel.duplicated(["patient", "week"]).any():
        raise ValueError("the panel must have one row per patient and week")
    names = {"y": outcome, **{f"x{position}": name for position, name in enumerate(predictors, start=1)}}
    data = panel[["patient", "week", *names.values()]].rename(columns={name: key for key, name in names.items()})
    data = data.astype(dict.fromkeys(names, "float64"))
    lagged = lag_by_calendar_week(data, list(names), lag)
    needed = ["y", *(f"{key}_lag" for key in names)]
    lagged = lagged.dropna(subset=needed).reset_index(drop=True)
    rows = lagged.groupby("patient")["week"].transform("size")
    kept = lagged[rows >= MIN_ROWS_PER_PATIENT].copy().reset_index(drop=True)
    dropped = int(lagged["patient"].nunique() - kept["patient"].nunique())
    for key in names:
        kept[f"{key}_w"] = detrend(kept, f"{key}_lag")
        if key != "y":
            kept[f"{key}_pm"] = kept.groupby("patient")[f"{key}_lag"].transform("mean")
    kept["y_detrended"] = detrend(kept, "y")
    return _Prepared(panel=data, frame=kept, lagged_all=lagged, names=names, dropped_patients=dropped)


def _within_terms(names: dict[str, str]) -> list[str]:
    return [f"{key}_w" for key in names if key != "y"] + ["y_w"]


def _between_terms(names: dict[str, str]) -> list[str]:
    return [f"{key}_pm" for key in names if key != "y"]


def _captured(caught: list[warnings.WarningMessage], *, converged: bool) -> list[Notice]:
    """statsmodels' warnings, each once. While the final fit converged, a failed first optimizer is only a retry."""
    found: dict[str, Notice] = {}
    for record in caught:
        message = str(record.message)
        if "boundary" in message:
            code = "boundary_fit"
        elif converged and ("Retrying" in message or "failed to converge" in message):
            code = "optimizer_retry"
        else:
            code = "convergence"
        found.setdefault(message, Notice(code=code, message=f"statsmodels: {message}"))
    return list(found.values())


OPTIMISERS = ["lbfgs", "bfgs", "cg"]
"""Tried in order until one converges. statsmodels starts with BFGS; L-BFGS reaches the same REML optimum (a log
likelihood as high or higher, estimates equal to 4 decimals on the benchmark's cohort) in two thirds of the time, and
BFGS and CG stay as fallbacks (bench/README.md, change 34)."""


def _fit_mixed(
    frame: pd.DataFrame, names: dict[str, str]
) -> tuple[dict[str, tuple[float, float, float]], list[Notice], str]:
    """``y ~ week + …`` with a random intercept and week slope per patient.

    Week enters centred and scaled (``time``): the same model, reparametrised, which the optimiser handles far
    better (unscaled weeks 0–44 made REML fail to converge on typical cohorts); no reported estimate changes.
    """
    terms = ["time", *_within_terms(names), *_between_terms(names)]
    formula = "y ~ " + " + ".join(terms)
    data = frame.assign(time=(frame["week"] - frame["week"].mean()) / (frame["week"].std() or 1.0))
    import statsmodels.formula.api as smf  # type: ignore[import-untyped]  # lazy: 2-3 s to import

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(formula, data, groups=data["patient"], re_formula="~time")
        result = model.fit(reml=True, method=OPTIMISERS)
    found = _captured(caught, converged=bool(result.converged))
    if not result.converged:
        found.append(
            Notice(
                code="not_converged",
                message=(
                    "the mixed model did not converge, so its standard errors are unreliable; method=within gives the "
                    "same within-person estimates without fitting variance components"
                ),
            )
        )
    estimates = {
        term: (float(result.params[term]), float(result.bse[term]), float(result.pvalues[term]))
        for term in terms
        if term != "time"
    }
    return estimates, found, formula


def _fit_within(
    frame: pd.DataFrame, names: dict[str, str]
) -> tuple[dict[str, tuple[float, float, float]], list[Notice], str]:
    import statsmodels.api as sm  # type: ignore[import-untyped]  # lazy: 2-3 s to import

    terms = _within_terms(names)
    groups = pd.factorize(frame["patient"])[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sm.OLS(frame["y_detrended"].to_numpy(), frame[terms].to_numpy()).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
    estimates = {
        term: (float(result.params[position]), float(result.bse[position]), float(result.pvalues[position]))
        for position, term in enumerate(terms)
    }
    formula = "y_detrended ~ 0 + " + " + ".join(terms) + "  (OLS, patient-clustered SE)"
    return estimates, _captured(caught, converged=True), formula


def _estimate(
    *,
    predictor: str,
    outcome: str,
    role: Role,
    fitted: tuple[float, float, float],
    standardized: float | None,
    interpretable: bool,
    note: str | None = None,
) -> Estimate:
    value, se, p = fitted
    return Estimate(
        predictor=predictor,
        outcome=outcome,
        role=role,
        estimate=value,
        se=_safe(se),
        ci_low=_safe(value - Z_95 * se),
        ci_high=_safe(value + Z_95 * se),
        p=_safe(p),
        standardized=standardized,
        interpretable=interpretable,
        note=note,
    )


def _ols(y: np.ndarray, x: np.ndarray) -> Any:
    import statsmodels.api as sm  # lazy: 2-3 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.OLS(y, sm.add_constant(x, has_constant="add")).fit()


def _pooled(frame: pd.DataFrame, names: dict[str, str], keys: list[str], lag: int) -> list[Estimate]:
    columns = [f"{key}_lag" for key in keys]
    result = _ols(frame["y"].to_numpy(), frame[columns].to_numpy())
    sd_y = float(frame["y"].std())
    estimates = []
    for position, key in enumerate(keys, start=1):
        sd_x = float(frame[f"{key}_lag"].std())
        value = float(result.params[position])
        estimates.append(
            _estimate(
                predictor=f"{names[key]} (t−{lag})",
                outcome=names["y"],
                role="pooled",
                fitted=(value, float(result.bse[position]), float(result.pvalues[position])),
                standardized=_safe(value * sd_x / sd_y) if sd_y > 0 else None,
                interpretable=False,
                note="naive: pooled OLS on raw scores",
            )
        )
    return estimates


def naive_estimates(prepared: _Prepared, lag: int) -> Naive:
    """Pooled OLS on raw lagged scores (with and without the outcome's lag), and pooled same-week correlations
    over every patient-week."""
    names = prepared.names
    frame = prepared.lagged_all
    predictors = [key for key in names if key != "y"]
    correlations = []
    for key in predictors:
        pair = prepared.panel[["y", key]].dropna()
        r = _safe(float(pair["y"].corr(pair[key]))) if len(pair) >= 3 else None
        correlations.append(Correlation(predictor=f"{names[key]} (same week)", outcome=names["y"], r=r, n=len(pair)))
    return Naive(
        note=NAIVE_NOTE,
        pooled_lagged=_pooled(frame, names, predictors, lag),
        pooled_lagged_with_outcome_lag=_pooled(frame, names, [*predictors, "y"], lag),
        correlations=correlations,
    )


def _sample_warnings(n_patients: int, median_rows: float) -> list[Notice]:
    found = []
    if n_patients < 100 or median_rows < 20:
        found.append(
            Notice(
                code="small_sample",
                message=(
                    f"{n_patients} patients with a median of {median_rows:g} usable weeks: in simulations, non-null "
                    "within effects were recovered within ±0.05 reliably only with about 200 patients at 13+ weeks or "
                    "100 patients at 20–25+ weeks (change-analytics §4.4)."
                ),
            )
        )
    if median_rows < 30:
        found.append(
            Notice(
                code="feedback_bias",
                message=(
                    "With short series, a cross-lag can pick up bias of about 2.7·|reverse effect|/T from feedback in "
                    "the other direction (≈ +0.05 at T = 13 for a reverse effect of −0.25); "
                    f"here T ≈ {median_rows:g}."
                ),
            )
        )
    return found


def fit_lagged_effects(
    panel: pd.DataFrame,
    *,
    outcome: str,
    predictors: Sequence[str],
    lag: int = 1,
    method: Method = "mixedlm",
    progress: Progress | None = None,
) -> LaggedResult:
    """Fit the within-person lagged model of ``outcome`` on ``predictors`` ``lag`` weeks earlier (see the module)."""
    report = progress or (lambda _step: None)
    report(STEPS[0])
    prepared = prepare(panel, outcome=outcome, predictors=predictors, lag=lag)
    frame, names = prepared.frame, prepared.names
    n_patients = int(frame["patient"].nunique())
    if n_patients < MIN_PATIENTS:
        raise InsufficientData(
            f"{n_patients} patient(s) have at least {MIN_ROWS_PER_PATIENT} weeks with the outcome and every lagged "
            f"variable present; at least {MIN_PATIENTS} are needed"
        )
    for key in names:
        if not float(frame[f"{key}_w"].std()) > WITHIN_SD_FLOOR:
            raise InsufficientData(f"{names[key]} does not vary within patients once their trends are removed")
    median_rows = float(frame.groupby("patient").size().median())
    report(STEPS[1])
    try:
        fitted, fit_warnings, formula = (_fit_mixed if method == "mixedlm" else _fit_within)(frame, names)
    except np.linalg.LinAlgError:
        raise InsufficientData("the model cannot be estimated: its predictors are collinear") from None

    sd_y = float(frame["y_detrended"].std())
    effects = []
    for key in [*(key for key in names if key != "y"), "y"]:
        term = f"{key}_w"
        sd_x = float(frame[term].std())
        standardized = _safe(fitted[term][0] * sd_x / sd_y) if sd_y > 0 else None
        is_control = key == "y"
        effects.append(
            _estimate(
                predictor=f"{names[key]} (t−{lag})",
                outcome=names["y"],
                role="autoregressive_control" if is_control else "within",
                fitted=fitted[term],
                standardized=standardized,
                interpretable=not is_control,
                note=NICKELL_NOTE if is_control else None,
            )
        )
    between = [
        _estimate(
            predictor=f"{names[key]} (t−{lag}), person mean",
            outcome=names["y"],
            role="between",
            fitted=fitted[f"{key}_pm"],
            standardized=None,
            interpretable=True,
            note=BETWEEN_NOTE,
        )
        for key in names
        if key != "y" and f"{key}_pm" in fitted
    ]
    report(STEPS[2])
    naive = naive_estimates(prepared, lag)
    specification: dict[str, Any] = {
        "method": method,
        "model": (
            "linear mixed model, random intercept and slope for week per patient (statsmodels MixedLM, REML)"
            if method == "mixedlm"
            else "within (fixed-effects) estimator: OLS on per-patient detrended data, patient-clustered SE"
        ),
        "formula": formula,
        "groups": "patient",
        "re_formula": "~week" if method == "mixedlm" else None,
        "time_scaling": "week centred and scaled to SD 1 inside the mixed model (an equivalent parametrisation)"
        if method == "mixedlm"
        else None,
        "variables": dict(names),
        "lag": lag,
        "time_unit": "week",
        "lagging": f"calendar week: x_lag(t) = x(t − {lag}); a week without a measurement gives no row",
        "detrending": "each lagged variable residualised on the patient's own [1, week] over the rows used (*_w)",
        "between_terms": "person means of the lagged predictors (*_pm)" if method == "mixedlm" else None,
        "standardized": "β·SD(x_w)/SD(y_w), SDs of the per-patient detrended residuals",
        "min_rows_per_patient": MIN_ROWS_PER_PATIENT,
        "confidence_interval": "95%, normal approximation",
        "reference": "change-analytics.md §4.2",
    }
    return LaggedResult(
        effects=effects,
        between_effects=between,
        n_patients=n_patients,
        n_observations=len(frame),
        dropped_patients=prepared.dropped_patients,
        specification=specification,
        warnings=[*fit_warnings, *_sample_warnings(n_patients, median_rows)],
        naive=naive,
        median_rows_per_patient=median_rows,
    )
