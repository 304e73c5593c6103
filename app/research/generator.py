"""Synthetic cohorts with known within-person effects, exactly per ``change-analytics.md`` §5.

Between persons (the LCM-SR growth part), each patient i has intercepts (α_D, α_F, α_S) ~ MVN(0, Σ_α) and weekly
slopes (β_D, β_F, β_S) ~ MVN(μ_β, Σ_β). Within persons, the structured residuals follow a VAR(1):

    w_D,t = ρ_D·w_D,t−1 + γ_FD,i·w_F,t−1 + γ_SD·w_S,t−1 + ε_D,t
    w_F,t = ρ_F·w_F,t−1 + δ_DF·w_D,t−1                   + ε_F,t
    w_S,t = ρ_S·w_S,t−1 + γ_DS·w_D,t−1                   + ε_S,t      ε_t ~ N(0, I₃)

started at w = 0 and run ``burn_in`` steps, so week 0 is drawn from the stationary distribution; γ_FD,i = γ_FD + u_i
with u_i ~ N(0, τ²). Observed latent scores are Y_X,it = α_Xi + β_Xi·t + w_X,it + m_X,it (m = measurement error,
N(0, σ_m²)); each (i, t) is dropped with probability ``missing`` (MCAR). One latent unit is one within-person
innovation SD. D is depression, F fear of compassion from others, S self-compassion.

Nothing here touches the database: the same cohort feeds the recovery tests (on latent Y, as §5.2 requires, because
rounding and clipping to instrument scales add bias) and the CLI that writes it into the service or to a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

CONSTRUCTS = ("D", "F", "S")


@dataclass(frozen=True)
class CohortConfig:
    """The parameters of §5.2, defaulting to configuration A of §5.5 (N = 250, T = 24)."""

    patients: int = 250
    weeks: int = 24
    rho_d: float = 0.30
    rho_f: float = 0.30
    rho_s: float = 0.30
    gamma_fd: float = 0.30
    """F(t−1) → D(t): the mechanism (expected +)."""
    gamma_ds: float = -0.20
    """D(t−1) → S(t): self-compassion follows improvement (expected −)."""
    gamma_sd: float = 0.0
    """S(t−1) → D(t): a null path."""
    delta_df: float = 0.0
    """D(t−1) → F(t): optional feedback."""
    tau: float = 0.0
    """SD of the person-specific part of γ_FD (§5.2 suggests 0.10 when used)."""
    measurement_error: float = 0.0
    missing: float = 0.0
    """MCAR probability of dropping a patient-week."""
    intercept_sd: float = 1.5
    intercept_corr_df: float = -0.4
    intercept_corr_ds: float = -0.6
    intercept_corr_fs: float = 0.3
    slope_mean_d: float = -0.10
    slope_mean_f: float = -0.08
    slope_mean_s: float = 0.06
    slope_sd: float = 0.08
    slope_corr_df: float = 0.5
    slope_corr_ds: float = -0.5
    slope_corr_fs: float = -0.3
    burn_in: int = 50

    def __post_init__(self) -> None:
        if self.patients < 1 or self.weeks < 1 or self.burn_in < 0:
            raise ValueError("patients and weeks must be at least 1, and burn-in at least 0")
        if not 0.0 <= self.missing < 1.0:
            raise ValueError("missing is a probability in [0, 1)")
        if self.tau < 0 or self.measurement_error < 0 or self.intercept_sd < 0 or self.slope_sd < 0:
            raise ValueError("standard deviations cannot be negative")
        radius = max(abs(np.linalg.eigvals(self.transition(0.0))))
        if radius >= 1.0:
            raise ValueError(f"the within-person VAR(1) is not stable (spectral radius {radius:.2f} ≥ 1)")

    def transition(self, gamma_fd_shift: float) -> np.ndarray:
        """The VAR(1) matrix A (rows: D, F, S at t; columns: D, F, S at t−1)."""
        return np.array(
            [
                [self.rho_d, self.gamma_fd + gamma_fd_shift, self.gamma_sd],
                [self.delta_df, self.rho_f, 0.0],
                [self.gamma_ds, 0.0, self.rho_s],
            ]
        )

    def known_effects(self) -> dict[str, float]:
        """The cross-lags §5.3 asserts (the ρ's are not asserted: the estimator is biased for them)."""
        return {"F->D": self.gamma_fd, "S->D": self.gamma_sd, "D->S": self.gamma_ds}

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _covariance(sd: float, corr_df: float, corr_ds: float, corr_fs: float) -> np.ndarray:
    corr = np.array([[1.0, corr_df, corr_ds], [corr_df, 1.0, corr_fs], [corr_ds, corr_fs, 1.0]])
    return corr * sd * sd


def generate_latent(config: CohortConfig, *, seed: int) -> pd.DataFrame:
    """One row per observed patient-week: ``patient`` (1…N), ``week`` (0…T−1) and the latent ``D``, ``F``, ``S``."""
    rng = np.random.default_rng(seed)
    n, weeks = config.patients, config.weeks
    intercepts = rng.multivariate_normal(
        np.zeros(3),
        _covariance(config.intercept_sd, config.intercept_corr_df, config.intercept_corr_ds, config.intercept_corr_fs),
        size=n,
    )
    slopes = rng.multivariate_normal(
        np.array([config.slope_mean_d, config.slope_mean_f, config.slope_mean_s]),
        _covariance(config.slope_sd, config.slope_corr_df, config.slope_corr_ds, config.slope_corr_fs),
        size=n,
    )
    gamma_fd = config.gamma_fd + (rng.normal(0.0, config.tau, size=n) if config.tau > 0 else np.zeros(n))

    w = np.zeros((n, 3))
    within = np.empty((weeks, n, 3))
    for step in range(config.burn_in + weeks):
        shocks = rng.standard_normal((n, 3))
        d, f, s = w[:, 0], w[:, 1], w[:, 2]
        w = (
            np.column_stack(
                [
                    config.rho_d * d + gamma_fd * f + config.gamma_sd * s,
                    config.delta_df * d + config.rho_f * f,
                    config.gamma_ds * d + config.rho_s * s,
                ]
            )
            + shocks
        )
        if step >= config.burn_in:
            within[step - config.burn_in] = w

    week = np.arange(weeks, dtype=float)
    observed = intercepts[None, :, :] + slopes[None, :, :] * week[:, None, None] + within
    if config.measurement_error > 0:
        observed = observed + rng.normal(0.0, config.measurement_error, size=observed.shape)
    keep = rng.random((weeks, n)) >= config.missing

    frame = pd.DataFrame(
        {
            "patient": np.tile(np.arange(1, n + 1), weeks),
            "week": np.repeat(np.arange(weeks), n),
            "D": observed[:, :, 0].ravel(),
            "F": observed[:, :, 1].ravel(),
            "S": observed[:, :, 2].ravel(),
        }
    )
    frame = frame[keep.ravel()]
    return frame.sort_values(["patient", "week"], ignore_index=True)
