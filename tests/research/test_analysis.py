"""The within-person lagged model of change-analytics §4.2, checked against the generator's known truths (§5)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.research.analysis import (
    InsufficientData,
    LaggedResult,
    Method,
    detrend,
    fit_lagged_effects,
    lag_by_calendar_week,
    prepare,
)
from app.research.generator import CohortConfig, generate_latent

RECOVERY = CohortConfig(patients=100, weeks=45)
"""Config A's effects (ρ = .3, γ_FD = .30, γ_DS = −.20, γ_SD = 0) on the smallest panel that reliably recovers them.

Over 500 seeds of the within estimator (equal to the mixed model's, §2.2), N × T = 100 × 45 missed ±0.05 on any of
the three cross-lags in 0.6 % of seeds, against 4.5 % for config A's 250 × 24 and 1.2 % for 120 × 36: the null
S→D path's feedback bias (≈ 2.7·|γ_DS|/T = 0.012 at T = 45, 0.023 at T = 24) is what a short panel cannot afford.
"""
RECOVERY_SEED = 2026
TOLERANCE = 0.05


def effect(result: LaggedResult, predictor: str) -> float:
    return next(e.estimate for e in result.effects if e.predictor == f"{predictor} (t−1)")


def test_lags_are_by_calendar_week_never_the_previous_row() -> None:
    panel = pd.DataFrame({"patient": ["p"] * 3, "week": [0, 1, 3], "y": [1.0, 2.0, 4.0]})

    lagged = lag_by_calendar_week(panel, ["y"], 1)

    # Week 1's lag is week 0's 1.0; week 3's would be week 2, which was not measured: missing, not week 1's 2.0.
    assert lagged["y_lag"].tolist()[:2] == [pytest.approx(math.nan, nan_ok=True), 1.0]
    assert math.isnan(lagged["y_lag"].iloc[2])
    assert lag_by_calendar_week(panel, ["y"], 2)["y_lag"].tolist()[2] == 2.0


def test_detrending_takes_out_each_patients_own_line() -> None:
    frame = pd.DataFrame({"patient": ["p"] * 4 + ["q"] * 4, "week": [0, 1, 2, 3] * 2, "v": [1, 3, 2, 6, 5, 7, 9, 11]})

    residuals = detrend(frame, "v").tolist()

    # p: mean week 1.5, mean value 3; slope = (−1.5·−2 + −0.5·0 + 0.5·−1 + 1.5·3) / (2.25 + 0.25 + 0.25 + 2.25)
    # = 7 / 5 = 1.4, so residuals = (v − 3) − 1.4·(week − 1.5) = 0.1, 0.7, −1.7, 0.9.
    # q: 5, 7, 9, 11 is exactly the line 5 + 2·week, so its residuals are 0.
    assert residuals == pytest.approx([0.1, 0.7, -1.7, 0.9, 0, 0, 0, 0])


def test_patients_with_fewer_than_four_usable_rows_are_dropped_and_counted() -> None:
    rows = []
    for patient, weeks in (("four", 5), ("three", 4), ("ten", 11)):
        rows += [{"patient": patient, "week": w, "y": float(w % 3), "x": float(w % 2)} for w in range(weeks)]
    prepared = prepare(pd.DataFrame(rows), outcome="y", predictors=["x"], lag=1)

    # Weeks 1…n−1 have a lag: "four" has 4 usable rows (kept), "three" 3 (dropped), "ten" 10 (kept).
    assert sorted(prepared.frame["patient"].unique()) == ["four", "ten"]
    assert prepared.dropped_patients == 1
    assert len(prepared.frame) == 4 + 10


def test_an_exact_within_relation_is_estimated_exactly_and_standardised_to_one() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for patient in range(6):
        x = rng.normal(size=12)
        intercept, slope = rng.normal(), rng.normal()
        # y(t) = a + b·t + 2·x(t−1): detrended, y_w = 2·x_w exactly, so β = 2 and β·SD(x_w)/SD(y_w) = 2/2 = 1.
        rows += [
            {"patient": patient, "week": t, "x": x[t], "y": intercept + slope * t + 2 * x[t - 1] if t else np.nan}
            for t in range(12)
        ]

    result = fit_lagged_effects(pd.DataFrame(rows), outcome="y", predictors=["x"], method="within")

    [mechanism, control] = result.effects
    assert (mechanism.predictor, mechanism.role, mechanism.interpretable) == ("x (t−1)", "within", True)
    assert mechanism.estimate == pytest.approx(2.0)
    assert mechanism.standardized == pytest.approx(1.0)
    assert (control.predictor, control.role, control.interpretable) == ("y (t−1)", "autoregressive_control", False)
    assert control.estimate == pytest.approx(0.0, abs=1e-9)
    assert "Nickell" in (control.note or "")
    # Week 1 has no y(t−1) (week 0's y is missing), so each patient has weeks 2…11: 10 usable rows.
    assert (result.n_patients, result.n_observations, result.dropped_patients) == (6, 60, 0)


def test_the_mixed_model_recovers_the_known_cross_lags_of_config_a() -> None:
    latent = generate_latent(RECOVERY, seed=RECOVERY_SEED)

    depression = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"])
    self_compassion = fit_lagged_effects(latent, outcome="S", predictors=["D", "F"])

    truth = RECOVERY.known_effects()
    assert abs(effect(depression, "F") - truth["F->D"]) <= TOLERANCE
    assert abs(effect(depression, "S") - truth["S->D"]) <= TOLERANCE
    assert abs(effect(self_compassion, "D") - truth["D->S"]) <= TOLERANCE
    assert depression.specification["re_formula"] == "~week"
    assert depression.n_patients == 100
    assert depression.n_observations == 100 * 44  # weeks 1…44 have a week-earlier value
    mechanism = depression.effects[0]
    assert mechanism.ci_low is not None
    assert mechanism.ci_high is not None
    assert mechanism.ci_low < truth["F->D"] < mechanism.ci_high
    assert mechanism.p is not None
    assert mechanism.p < 0.001


def test_the_within_estimator_equals_the_mixed_models_within_effects() -> None:
    latent = generate_latent(CohortConfig(patients=40, weeks=15), seed=8)

    mixed = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"], method="mixedlm")
    within = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"], method="within")

    # §2.2: the detrended predictors are orthogonal to each patient's [1, week], so the GLS estimates equal FE's.
    for a, b in zip(mixed.effects, within.effects, strict=True):
        assert a.estimate == pytest.approx(b.estimate, abs=1e-6)


def test_the_naive_pooled_analysis_misleads_on_config_a() -> None:
    latent = generate_latent(CohortConfig(), seed=RECOVERY_SEED)

    result = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"], method="within")

    # §5.4 and §5.5: pooled OLS makes self-compassion look protective and hides fear of compassion.
    naive = {e.predictor: e.estimate for e in result.naive.pooled_lagged_with_outcome_lag}
    assert naive["S (t−1)"] < -0.05
    assert naive["F (t−1)"] < 0.15
    raw = {e.predictor: e.estimate for e in result.naive.pooled_lagged}
    assert raw["S (t−1)"] < -0.05
    # Same-week pooled correlations: r(S, D) ≈ −0.47 and r(F, D) ≈ +0.03 (§5.4).
    r = {c.predictor: c.r or 0.0 for c in result.naive.correlations}
    assert r["S (same week)"] < -0.3
    assert abs(r["F (same week)"]) < 0.15
    assert all(e.interpretable is False and e.role == "pooled" for e in result.naive.pooled_lagged)
    # …while the within-person model finds the mechanism and no effect of self-compassion.
    assert effect(result, "F") > 0.25
    assert abs(effect(result, "S")) < 0.05


def test_small_samples_are_surfaced_as_warnings() -> None:
    latent = generate_latent(CohortConfig(patients=6, weeks=8), seed=4)

    result = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"], method="within")

    # 6 patients × 7 usable weeks: counts, not fitted values, decide these two.
    assert {"small_sample", "feedback_bias"} <= {warning.code for warning in result.warnings}
    assert result.median_rows_per_patient == 7


def test_a_mixed_model_on_the_boundary_says_so_on_every_blas_kernel() -> None:
    """A fit problem built from the data's structure, not from where an optimiser happens to stop.

    Every patient has the same outcome series (patients differ only by a constant shift of the predictor), so the
    random intercept and slope have variance exactly zero; and every variance in the data is below statsmodels'
    boundary threshold (0.01), so no estimate the optimiser can reach is above it, whatever BLAS kernel it runs on.
    """
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=12) * 0.05
    panel = pd.DataFrame([{"patient": p, "week": t, "y": y[t], "x": x[t] + p} for p in range(6) for t in range(12)])

    result = fit_lagged_effects(panel, outcome="y", predictors=["x"])

    boundary = [w for w in result.warnings if w.code == "boundary_fit"]
    assert [w.message for w in boundary] == ["statsmodels: The MLE may be on the boundary of the parameter space."]


def test_a_mixed_model_that_does_not_converge_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """How a failed fit is reported, with the failure made certain (statsmodels' outcome on a hard case depends on
    the CPU's BLAS kernel): its warnings are passed on as they are, and a warning says not to trust the SEs."""
    from statsmodels.regression.mixed_linear_model import MixedLM  # type: ignore[import-untyped]
    from statsmodels.tools.sm_exceptions import ConvergenceWarning  # type: ignore[import-untyped]

    fit = MixedLM.fit

    def failing(model: Any, *args: Any, **kwargs: Any) -> Any:
        result = fit(model, *args, **kwargs)
        warnings.warn("Gradient optimization failed, |grad| = 1.5", ConvergenceWarning, stacklevel=1)
        result.converged = False
        return result

    monkeypatch.setattr(MixedLM, "fit", failing)
    latent = generate_latent(CohortConfig(patients=6, weeks=8), seed=4)

    result = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"])

    codes = [warning.code for warning in result.warnings]
    assert "not_converged" in codes
    messages = [w.message for w in result.warnings if w.code == "convergence"]
    assert "statsmodels: Gradient optimization failed, |grad| = 1.5" in messages
    assert all(message.startswith("statsmodels: ") for message in messages)


def test_a_retried_optimiser_is_not_a_failure_when_the_fit_converged(monkeypatch: pytest.MonkeyPatch) -> None:
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    fit = MixedLM.fit

    def retried(model: Any, *args: Any, **kwargs: Any) -> Any:
        warnings.warn("Retrying MixedLM optimization with bfgs", ConvergenceWarning, stacklevel=1)
        result = fit(model, *args, **kwargs)
        result.converged = True
        return result

    monkeypatch.setattr(MixedLM, "fit", retried)
    latent = generate_latent(CohortConfig(patients=6, weeks=8), seed=4)

    result = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"])

    codes = {warning.code for warning in result.warnings}
    assert "optimizer_retry" in codes
    assert "not_converged" not in codes


def test_the_optimiser_tried_first_does_not_change_what_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """L-BFGS is tried first for speed (bench/README.md); statsmodels' own order starts with BFGS. Both stop at the
    same REML optimum within their gradient tolerance, so every reported estimate and standard error agrees to far
    more digits than any report shows."""
    from app.research import analysis

    latent = generate_latent(CohortConfig(patients=60, weeks=20), seed=11)
    ours = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"])
    monkeypatch.setattr(analysis, "OPTIMISERS", ["bfgs", "lbfgs", "cg"])
    statsmodels_order = fit_lagged_effects(latent, outcome="D", predictors=["F", "S"])

    assert ours.between_effects
    pairs = zip(
        [*ours.effects, *ours.between_effects],
        [*statsmodels_order.effects, *statsmodels_order.between_effects],
        strict=True,
    )
    for a, b in pairs:
        assert a.predictor == b.predictor
        assert a.estimate == pytest.approx(b.estimate, rel=1e-3, abs=1e-4)
        assert a.se == pytest.approx(b.se, rel=1e-3)
    assert "not_converged" not in {w.code for w in [*ours.warnings, *statsmodels_order.warnings]}


def test_too_few_usable_patients_is_an_error() -> None:
    latent = generate_latent(CohortConfig(patients=2, weeks=10), seed=1)

    with pytest.raises(InsufficientData, match="2 patient"):
        fit_lagged_effects(latent, outcome="D", predictors=["F"])


def test_a_panel_with_two_rows_for_one_week_is_refused() -> None:
    panel = pd.DataFrame({"patient": ["p", "p"], "week": [0, 0], "y": [1.0, 2.0], "x": [0.0, 1.0]})

    with pytest.raises(ValueError, match="one row per patient and week"):
        fit_lagged_effects(panel, outcome="y", predictors=["x"])


@pytest.mark.parametrize("method", ["mixedlm", "within"])
def test_a_predictor_that_never_changes_within_patients_is_an_error(method: Method) -> None:
    rng = np.random.default_rng(0)
    panel = pd.DataFrame(
        [{"patient": p, "week": t, "y": rng.normal(), "x": float(p)} for p in range(6) for t in range(10)]
    )

    with pytest.raises(InsufficientData, match="x does not vary within patients"):
        fit_lagged_effects(panel, outcome="y", predictors=["x"], method=method)
