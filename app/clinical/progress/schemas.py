"""API shapes of expected-response tables and of a patient's progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.clinical.change import Category, Method
from app.clinical.progress.expected import DEFAULT_BAND_Z
from app.clinical.progress.status import MethodKind, Status
from app.core.schemas import Schema

Number = Annotated[float, Field(ge=-1000, le=1000, allow_inf_nan=False)]
"""A coefficient: bounded so that a prediction on any score's range stays a finite, printable number."""
Variance = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
BandZ = Annotated[float, Field(ge=1, le=3, allow_inf_nan=False)]
ScoreKey = Annotated[str, Field(min_length=1, max_length=50)]


class ExpectedResponseFit(Schema):
    """Fit a table from the clinic's own completed courses of this instrument's score."""

    score: ScoreKey = Field(default="total", description="The score key, e.g. `total`.")
    band_z: BandZ = Field(
        default=DEFAULT_BAND_Z,
        description="The band is the prediction ± band_z × SD of the prediction (1.645: about 5 % of typical courses "
        "above it at any one measurement).",
    )


class Coefficients(Schema):
    """y_it = b0 + b1·y0 + (b2 + b3·y0)·ln(t) + u0 + u1·ln(t) + e, t = 1 + weeks since the baseline."""

    b0: Number
    b1: Number
    b2: Number
    b3: Number
    intercept_variance: Variance = Field(description="Var(u0).")
    slope_variance: Variance = Field(description="Var(u1), the random slope on ln(t).")
    intercept_slope_covariance: Annotated[float, Field(ge=-1_000_000, le=1_000_000, allow_inf_nan=False)] = Field(
        description="Cov(u0, u1)."
    )
    residual_variance: Variance = Field(description="Var(e).")


class CoefficientsRead(BaseModel):
    """The stored table's coefficients (as ``Coefficients``, unbounded: a fit's own estimates)."""

    b0: float
    b1: float
    b2: float
    b3: float
    intercept_variance: float
    slope_variance: float
    intercept_slope_covariance: float
    residual_variance: float


class ExpectedResponseCited(Schema):
    """A published table, loaded with its citation (the service never ships one of its own)."""

    score: ScoreKey = "total"
    coefficients: Coefficients
    band_z: BandZ = DEFAULT_BAND_Z
    max_weeks: Annotated[float, Field(gt=0, le=520, allow_inf_nan=False)] | None = Field(
        default=None, description="The latest week after the baseline the table describes (none: no limit)."
    )
    courses: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Courses it was estimated from.")
    citation: Annotated[str, Field(min_length=1, max_length=4000)] = Field(
        description="Where the numbers come from (publication, sample, instrument version)."
    )


class ExpectedResponseRead(BaseModel):
    id: uuid.UUID
    instrument: str
    score: str
    version_family: str
    source: Literal["fitted", "cited"]
    citation: str | None
    model_form: str
    time_scale: str = Field(description="`weeks_since_baseline`: t = 1 + weeks since the course's first measurement.")
    coefficients: CoefficientsRead
    coefficients_covariance: list[list[float]] | None = Field(
        description="Cov(b0..b3) of a fit; part of the prediction's SD."
    )
    band_z: float
    max_weeks: float | None
    courses: int | None = Field(description="Completed courses fitted (or the cited source's number).")
    measurements: int | None = Field(description="Measurements of those courses used, baselines included.")
    data_cut_at: datetime | None = Field(description="The latest measured_at included in the fit.")
    fitted_at: datetime = Field(description="When it was fitted or loaded.")
    notices: list[str]


class TableRef(BaseModel):
    id: uuid.UUID
    source: Literal["fitted", "cited"]
    fitted_at: datetime
    courses: int | None
    citation: str | None


class ProgressPoint(BaseModel):
    measurement_id: uuid.UUID
    measured_at: datetime
    value: float
    weeks_since_baseline: float
    expected: float | None
    lower: float | None
    upper: float | None
    band: Literal["low", "expected", "high"] | None = Field(
        description="Below, within or above the expected band; null with `band_reason` (the baseline, no table, "
        "beyond the table's weeks)."
    )
    band_reason: str | None
    change: Category | None = Field(description="Change from the baseline, as `GET …/change` judges it.")


class ProgressRead(BaseModel):
    patient_id: uuid.UUID
    instrument: str
    score: str
    direction: str
    version_family: str | None
    status: Status
    provisional: bool = Field(
        description="Before the minimum number of measurements: the status may still change to not_on_track."
    )
    method: MethodKind
    table: TableRef | None = Field(description="The expected-response table used (method expected_response_table).")
    change_method: Method = Field(description="How reliable change (deterioration, recovery, the rule) is judged.")
    minimum_measurements: int
    reasons: list[str]
    points: list[ProgressPoint]
