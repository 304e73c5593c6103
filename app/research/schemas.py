"""Request and response shapes of the research endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from app.core.datetimes import ClinicalTime
from app.core.schemas import Schema


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    SAV = "sav"
    DTA = "dta"
    REDCAP = "redcap"
    """REDCap records for its Data Import Tool (de-identified exports only; see ``app/research/redcap.py``)."""


class Layout(StrEnum):
    LONG = "long"
    """One row per score (or item) per measurement."""
    WIDE = "wide"
    """One row per patient per week, one column per instrument score (or item)."""


class Level(StrEnum):
    SCORES = "scores"
    ITEMS = "items"


PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

VariableRef = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        max_length=120,
        description="`<instrument>.<score key>`, e.g. `phq9.total`.",
        examples=["phq9.total"],
    ),
]


class LaggedEffectsRequest(Schema):
    outcome: VariableRef
    predictors: list[VariableRef] = Field(
        min_length=1, max_length=6, examples=[["fcs_from_others.total", "scs_sf.total"]]
    )
    lag: int = Field(default=1, ge=1, le=12, strict=True, description="Lag in weeks.")
    time_unit: Literal["week"] = Field(
        default="week", description="Lags are by calendar week since the patient's first measurement, never by row."
    )
    method: Literal["mixedlm", "within"] = Field(
        default="mixedlm",
        description=(
            "`mixedlm`: random intercept and slope for week (statsmodels MixedLM, REML). `within`: the equivalent "
            "within (fixed-effects) estimator on per-patient detrended data, with patient-clustered standard errors."
        ),
    )

    @model_validator(mode="after")
    def _distinct(self) -> LaggedEffectsRequest:
        if len(set(self.predictors)) != len(self.predictors):
            raise ValueError("a predictor is listed twice")
        if self.outcome in self.predictors:
            raise ValueError("the outcome's own lag is always included as a control; do not list it as a predictor")
        return self


class Effect(BaseModel):
    predictor: str
    outcome: str
    role: Literal["within", "autoregressive_control", "between", "pooled"]
    estimate: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    standardized: float | None = Field(description="β·SD(x_w)/SD(y_w) over the detrended residuals (within effects).")
    interpretable: bool
    note: str | None = None


class Correlation(BaseModel):
    predictor: str
    outcome: str
    r: float | None
    n: int


class NaiveEstimates(BaseModel):
    note: str
    pooled_lagged: list[Effect]
    pooled_lagged_with_outcome_lag: list[Effect]
    correlations: list[Correlation]


class AnalysisWarning(BaseModel):
    code: str
    message: str


class LaggedEffectsResponse(BaseModel):
    effects: list[Effect]
    between_effects: list[Effect]
    n_patients: int
    n_observations: int
    dropped_patients: int = Field(description="Patients with data but fewer than 4 usable rows.")
    median_rows_per_patient: float = Field(description="Median usable weeks per patient kept (T).")
    specification: dict[str, object]
    warnings: list[AnalysisWarning]
    naive: NaiveEstimates


class ExportRecord(BaseModel):
    id: uuid.UUID
    api_key_id: uuid.UUID | None
    role: str
    identified: bool
    parameters: dict[str, Any]
    created_at: datetime


class RejectedRow(BaseModel):
    row: int
    field: str
    message: str


class ImportReport(BaseModel):
    rows: int = Field(description="Data rows read from the file.")
    imported: int
    patients_created: int
    sessions_created: int
    by_instrument: dict[str, int]


class RedcapMissingCode(BaseModel):
    code: str
    label: str
    meaning: str


class RedcapSetup(BaseModel):
    """How to set up the REDCap project that the data dictionary and ``format=redcap`` records fit."""

    project_type: Literal["classic"]
    record_id_field: str
    base_form: str = Field(description="The non-repeating form holding only the record id.")
    repeating_instruments: list[str] = Field(description="Forms to make repeatable: one per instrument.")
    missing_data_codes: list[RedcapMissingCode]
    missing_data_codes_text: str = Field(
        description="The codes as REDCap's Missing Data Codes box takes them: `code, label`, one per line."
    )
    steps: list[str]


class ConsentModel(StrEnum):
    OPT_IN = "opt_in"
    """Only patients whose latest consent is ``granted`` are exported."""
    OPT_OUT = "opt_out"
    """Every patient is exported unless their latest consent is ``refused`` or ``withdrawn``."""


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class ProjectCreate(Schema):
    name: str = Field(pattern=PROJECT_PATTERN, description="Unique in the clinic; lower case, digits, `_` and `-`.")
    purpose: str = Field(min_length=1, max_length=2000)
    ethics_reference: str = Field(min_length=1, max_length=200, description="The ethics board's approval reference.")
    consent_model: ConsentModel


class ProjectRead(Schema):
    id: uuid.UUID
    name: str
    purpose: str
    ethics_reference: str
    consent_model: ConsentModel
    created_at: datetime


class ConsentChange(Schema):
    status: ConsentStatus
    recorded_at: ClinicalTime | None = Field(
        default=None, description="When the patient decided (not in the future); now if omitted."
    )
    note: str | None = Field(default=None, min_length=1, max_length=2000)


class ConsentRead(Schema):
    id: uuid.UUID
    project_id: uuid.UUID
    patient_id: uuid.UUID
    status: ConsentStatus
    recorded_at: datetime
    note: str | None
    recorded_by_key_id: uuid.UUID | None
    created_at: datetime


class Withdrawal(BaseModel):
    pseudonym: str = Field(description="The patient's pseudonym in this project's exports: delete their rows.")
    status: ConsentStatus = Field(description="`withdrawn`, or `refused` (an objection under an opt-out project).")
    recorded_at: datetime = Field(description="When the patient withdrew or objected.")
    last_export_at: datetime = Field(description="The last export of the project that could have included them.")


class ProjectConsent(BaseModel):
    project: ProjectRead
    status: ConsentStatus | None = Field(description="The latest decision; null if the patient was never asked.")
    included: bool = Field(description="Whether the project's exports include the patient now (its consent model).")


class PatientConsents(BaseModel):
    projects: list[ProjectConsent]
    history: list[ConsentRead] = Field(description="Every decision, every project, in the order recorded.")
