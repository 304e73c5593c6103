from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.clinical.change import Category, CutoffType, Method, ReliabilityKind
from app.clinical.risk import HISTORICAL_ALERT_DAYS, HISTORICAL_ALERT_DAYS_MAX, HISTORICAL_ALERT_DAYS_MIN
from app.core.schemas import SHOWN_ONCE, Schema, shown_once
from app.patients.schemas import Identifier

Number = Annotated[float, Field(allow_inf_nan=False)]


class BandRead(BaseModel):
    label: str
    lower: float
    lower_inclusive: bool


class TrajectoryPoint(BaseModel):
    measurement_id: uuid.UUID
    version: int = Field(description="The measurement's current version.")
    instrument_version: str
    measured_at: datetime
    session_id: uuid.UUID | None
    session_number: int | None = Field(description="The therapy session's number, when the measurement names one.")
    days_since_first: float = Field(description="Days since the first point of this series.")
    value: float | None = Field(description="Null when too many items were missing to score.")
    band: str | None
    prorated: bool
    flags: list[str] = Field(description="Risk flags first (item 9), then the others.")


class TrajectoryRead(BaseModel):
    patient_id: uuid.UUID
    instrument: str
    score: str
    label: str
    direction: str
    minimum: float
    maximum: float
    bands: list[BandRead]
    version_family: str | None = Field(
        description="MAJOR version of the definitions compared (that of the latest measurement); null when none."
    )
    points: list[TrajectoryPoint]
    points_in_other_version_families: int = Field(
        description="Measurements of this instrument scored under another MAJOR definition version, left out."
    )


class ChangePoint(BaseModel):
    measurement_id: uuid.UUID
    measured_at: datetime
    instrument_version: str
    value: float
    band: str | None
    prorated: bool


class MissingParameterRead(BaseModel):
    name: str
    needed_for: list[str] = Field(description="The outputs that stay null until this parameter is set.")


class EvidenceRead(BaseModel):
    """How well a shipped default parameter is supported by the project's references."""

    sources: int = Field(description="How many sources in the references give this value.")
    source_names: list[str] = Field(description="Those sources, briefly.")
    confirmed: bool = Field(description="Two or more sources agree (the references' CONFIRMED); false: one source.")
    reliability_kind: ReliabilityKind | None = Field(
        default=None,
        description="For `reliability`: `internal_consistency` (Cronbach's α) or `test_retest` (what Jacobson & "
        "Truax used).",
    )
    note: str | None = None


class ParametersRead(BaseModel):
    """The parameters a result used, each with its citation, so the result can be audited."""

    instrument: str
    score: str
    method: Method
    source: str = Field(description="`default` (shipped) or `clinic` (set by the clinic's admin).")
    direction: str = Field(description="From the instrument definition: `lower_is_better` or `higher_is_better`.")
    reliability: float | None
    clinical_mean: float | None
    clinical_sd: float | None
    functional_mean: float | None
    functional_sd: float | None
    cutoff_type: CutoffType | None
    caseness_cutoff: float | None
    cutoff: float | None = Field(description="The cut-off used: the caseness cut-off, or cut-off a, b or c computed.")
    minimum_change: float | None
    rci_cutoff: float | None = Field(description="1.96 for jacobson_truax.")
    standard_error: str | None = Field(description="Which standard error the RCI uses.")
    standard_error_of_measurement: float | None
    standard_error_of_difference: float | None
    response_reduction: float | None
    remission_below: float | None
    citations: dict[str, str] = Field(description="Source of each parameter, by parameter name.")
    evidence: dict[str, EvidenceRead] = Field(
        default_factory=dict,
        description="Shipped defaults only: the evidence for each parameter, by name (number of sources; for the "
        "reliability, internal consistency or test–retest). Empty for a clinic's own parameters (their citation "
        "is the evidence).",
    )
    updated_at: datetime | None = None


class ChangeRead(BaseModel):
    patient_id: uuid.UUID
    instrument: str
    score: str
    method: Method
    version_family: str
    baseline: ChangePoint
    latest: ChangePoint
    difference: float = Field(description="latest − baseline, in score points.")
    rci: float | None = Field(description="Reliable change index (jacobson_truax only).")
    reliable_change_threshold: float | None = Field(description="Smallest reliable raw change, in score points.")
    caseness_baseline: bool | None
    caseness_latest: bool | None
    category: Category | None
    response: bool | None = Field(
        description="A reduction of at least `response_reduction` of the baseline. Only for lower-is-better scores "
        "of patients who were cases at baseline by a caseness cut-off (PHQ-9: baseline 10 or more); else null, "
        "with `response_reason`."
    )
    response_reason: str | None = Field(default=None, description="Why `response` is null; null when it is not.")
    remission: bool | None = Field(
        description="Latest below `remission_below` (PHQ-9: below 5). Only for patients who were cases at baseline, "
        "as `response`; else null, with `remission_reason`."
    )
    remission_reason: str | None = Field(default=None, description="Why `remission` is null; null when it is not.")
    parameters: ParametersRead | None
    missing_parameters: list[MissingParameterRead] = Field(
        description="Parameters with no value (neither shipped nor set by the clinic), and the outputs left null."
    )


class OutcomesRead(BaseModel):
    instrument: str
    score: str
    method: Method
    measured_from: datetime | None
    measured_to: datetime | None
    patients_measured: int = Field(description="Patients with at least one scored measurement in the window.")
    patients_assessed: int = Field(description="Patients with two or more: first compared with latest.")
    counts: dict[Category, int] = Field(description="Patients per category; empty when parameters are missing.")
    rates: dict[Category, float] = Field(description="counts / patients_assessed.")
    cases_at_baseline: int | None = Field(description="Assessed patients in caseness at their first measurement.")
    recovery_rate_of_cases: float | None = Field(description="recovered / cases_at_baseline (NHS Talking Therapies).")
    responses: int | None = Field(
        description="Responders among the cases at baseline (response is defined for them only; rate: responses / "
        "cases_at_baseline)."
    )
    remissions: int | None = Field(description="Remissions among the cases at baseline.")
    parameters: ParametersRead | None
    missing_parameters: list[MissingParameterRead]
    synthetic: bool = Field(
        default=False, description="The clinic is a synthetic one (generated data, made by the cohort generator)."
    )


class ChangeParametersSet(Schema):
    """A clinic's own parameters for one score and method; they replace the shipped defaults as a whole."""

    reliability: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None
    clinical_mean: Number | None = None
    clinical_sd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    functional_mean: Number | None = None
    functional_sd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    cutoff_type: CutoffType | None = None
    caseness_cutoff: Number | None = None
    minimum_change: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    response_reduction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        default=None, description="Response = a reduction of at least this fraction (0.5 = 50 %)."
    )
    remission_below: Number | None = None
    citation: Annotated[str, Field(min_length=1, max_length=4000)] = Field(
        description="Where these numbers come from (publication, sample, reliability type)."
    )


class QuietHours(Schema):
    """Local times, read in each schedule's time zone; ``end`` before ``start`` spans midnight."""

    start: time = Field(description="Local time the quiet hours begin, e.g. `22:00`.")
    end: time = Field(description="Local time they end, e.g. `07:00` (the next morning when earlier than start).")

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a local time without an offset (read in each schedule's time zone), e.g. 22:00")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ (quiet hours of no length or of the whole day)")
        return self


FrameOrigin = Annotated[
    str,
    Field(
        max_length=300,
        pattern=r"^(https://[A-Za-z0-9.-]+|http://(localhost|127\.0\.0\.1))(:[0-9]{1,5})?$",
        description="`https://host[:port]`; plain http only for localhost (development).",
    ),
]


class ClinicSettingsWrite(Schema):
    crisis_text: Annotated[str, Field(min_length=1, max_length=4000)] | None = Field(
        default=None, description="Shown with every risk alert, e.g. the clinic's crisis line and on-call procedure."
    )
    webhook_url: Annotated[AnyHttpUrl, Field(max_length=2000)] | None = Field(
        default=None,
        description="Called (POST, JSON with ids and the flag only, never item content, signed per Standard Webhooks) "
        "when an alert is raised. Its host must resolve to public addresses only (no loopback, private, link-local, "
        "multicast or reserved address; WEBHOOK_ALLOW_PRIVATE_NETWORKS allows loopback and private ones); https in "
        "production; no credentials in the URL. Redirects are not followed.",
    )
    reminder_quiet_hours: QuietHours | None = Field(
        default=None,
        description="Local times in which no assessment reminder (`assessment.due`, `assessment.overdue`) is "
        "delivered, read in each schedule's time zone: one falling in them is delivered when they end (if the "
        "window is still open then). Null: reminders go out when they fall.",
    )
    item9_missing_pages: bool = Field(
        default=False,
        description="Whether an `item9_missing` prompt (item 9 left unanswered; routine) calls the webhook. Urgent "
        "item-9 alerts always do (unless historical).",
    )
    historical_alert_days: int = Field(
        default=HISTORICAL_ALERT_DAYS,
        ge=HISTORICAL_ALERT_DAYS_MIN,
        le=HISTORICAL_ALERT_DAYS_MAX,
        description="An alert whose measurement is older than this many days when it is recorded (imported "
        "history) is marked `historical` and never paged.",
    )
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="UTC",
        description="The IANA time zone (e.g. `Europe/Oslo`) in which the clinician report and the caseload show "
        "times, each with its UTC offset. Default `UTC`.",
    )
    report_frame_origins: Annotated[list[FrameOrigin], Field(max_length=10)] | None = Field(
        default=None,
        description="Origins (`https://ehr.example.org`, no path) whose pages may show a report link's page in a "
        "frame (its `Content-Security-Policy: frame-ancestors`). Null or empty: no site may frame it.",
    )


class ClinicSettingsRead(BaseModel):
    crisis_text: str | None
    webhook_url: str | None
    webhook_secret_issued_at: datetime | None = Field(
        default=None, description="When the webhook's current signing secret was issued (null: no webhook)."
    )
    reminder_quiet_hours: QuietHours | None = None
    item9_missing_pages: bool = False
    historical_alert_days: int = HISTORICAL_ALERT_DAYS
    synthetic: bool = Field(
        default=False,
        description="The clinic was made by the synthetic cohort generator: its patients and data are generated, "
        "never real.",
    )
    timezone: str = Field(default="UTC", description="The IANA time zone of the report and the caseload.")
    report_frame_origins: list[str] | None = Field(
        default=None, description="Origins allowed to frame a report link's page (null: none)."
    )
    updated_at: datetime | None


class ClinicSettingsWritten(ClinicSettingsRead):
    webhook_secret: str | None = Field(
        default=None,
        description="The webhook's signing secret (`whsec_` + base64), present only in the response that set the "
        "webhook up: shown this once, never stored in clear. Null otherwise; `POST /v1/clinic/webhook-secret` "
        "issues a new one.",
        json_schema_extra={SHOWN_ONCE: True},
    )


class WebhookSecretIssued(BaseModel):
    secret: str = shown_once(
        "The webhook's new signing secret (`whsec_` + base64): shown this once, never stored in clear."
    )
    issued_at: datetime
    previous_valid_until: datetime | None = Field(
        description="Until then deliveries are also signed with the previous secret (a second signature in "
        "`webhook-signature`), so the receiver can switch without losing any."
    )


class WebhookDeliveryRead(BaseModel):
    """A webhook delivery as an admin sees it: what it is for and how it went; never the payload or a secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Also the `webhook-id` header of each of its calls.")
    event: str = Field(description="`risk_alert.raised`, `assessment.due`, …")
    status: Literal["pending", "delivered", "failed", "withdrawn"] = Field(
        description="`failed`: no attempt left (the dead letter); `POST …/retry` gives it a new round. `withdrawn`: a "
        "reminder whose assessment was answered, declined, cancelled or closed before it could go (not sent)."
    )
    attempts: int
    last_status: int | None = Field(description="The receiver's HTTP status at the last attempt, if it answered.")
    last_error: str | None = Field(description="Why the last attempt failed (no secret, no patient data).")
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When the next attempt is due, while pending.")
    delivered_at: datetime | None


class AlertMeasurement(BaseModel):
    id: uuid.UUID
    version: int = Field(description="The version that raised the alert.")
    current: bool = Field(description="False when a later amendment superseded that version.")
    instrument: str
    measured_at: datetime
    flags: list[str]


class AlertPatient(BaseModel):
    id: uuid.UUID
    identifiers: list[Identifier]


AlertKind = Literal["item9_positive", "item9_endorsed", "item9_missing", "not_on_track"]
"""The kinds of alert (``app.clinical.risk.KINDS``)."""
AlertPriority = Literal["urgent", "routine"]


class AlertRead(BaseModel):
    id: uuid.UUID
    flag: str = Field(description="The alert's kind (the same as `kind`; kept for existing clients).")
    kind: str = Field(
        description="`item9_positive` / `item9_endorsed` (item 9 answered above 0: urgent), `item9_missing` (item 9 "
        "left unanswered: a routine prompt that someone should ask), `not_on_track` (routine)."
    )
    item_value: int | None = Field(
        description="The item-9 answer that raised an item-9 alert (an amendment raising it higher raises a new "
        "alert with the new value); null for other kinds."
    )
    priority: AlertPriority = Field(
        description="`urgent`: risk flags, paged to the webhook unless historical. `routine`: `item9_missing` "
        "(paged only when the clinic's `item9_missing_pages` is on) and `not_on_track` (never paged)."
    )
    historical: bool = Field(
        description="Raised by a measurement older than the clinic's `historical_alert_days` when it was recorded "
        "(imported history): shown, never paged."
    )
    instrument: str
    raised_at: datetime
    patient: AlertPatient
    measurement: AlertMeasurement
    acknowledged: bool
    acknowledged_at: datetime | None
    acknowledged_by_key_id: uuid.UUID | None
    acknowledgement_note: str | None
    crisis_text: str | None = Field(description="The clinic's crisis text, shown with the alert.")


class AlertAcknowledge(Schema):
    note: Annotated[str, Field(min_length=1, max_length=4000)] = Field(
        description="What was done (e.g. risk assessed in session, safety plan reviewed)."
    )


class ReportLinkCreate(Schema):
    valid_minutes: int = Field(
        default=15, ge=1, le=60, description="How long the link opens the report: 1 to 60 minutes (default 15)."
    )


class ReportLinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]
    include_alerts: bool = Field(description="Whether the page shows the alerts (the creator's role could read them).")


class ReportLinkIssued(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    url: str = shown_once(
        "Opens this patient's report (read-only, HTML) without an API key until `expires_at`, in a browser or an EHR "
        "frame (`<PUBLIC_BASE_URL>/v1/report-links/<token>`). Shown once: only an HMAC of its token is stored."
    )
    expires_at: datetime


class CaseloadInstrument(BaseModel):
    instrument: str
    score: str = Field(description="The primary score (the first score of an instrument without one).")
    direction: str = Field(description="`lower_is_better` or `higher_is_better`.")
    value: float = Field(description="The latest scored value.")
    band: str | None
    measured_at: datetime
    change_category: Category | None = Field(
        description="First vs latest scored measurement (as in the report); null with fewer than two scores or "
        "without change parameters."
    )
    method: Method | None = Field(description="The method that gave the category.")


class CaseloadOpenAlerts(BaseModel):
    urgent: int = Field(description="Unacknowledged risk alerts (item 9).")
    routine: int = Field(description="Unacknowledged alerts of other kinds (a missing item 9, not on track).")


class CaseloadRow(BaseModel):
    patient_id: uuid.UUID
    identifiers: list[str] = Field(description="The patient's external identifiers (values).")
    instruments: list[CaseloadInstrument]
    last_measured_at: datetime | None
    open_alerts: CaseloadOpenAlerts | None = Field(description="Null when the caller's role may not read alerts.")
    assessments_missed: int = Field(
        description="Instruments whose most recent assessment window closed unanswered (schedules)."
    )
    assessments_due: int = Field(description="Instruments whose assessment window is open now.")
    deteriorated: bool = Field(description="Reliable deterioration (deteriorated or harmed) on any instrument.")
    progress: str | None = Field(description="The progress status, when known.")
    report: str = Field(description="The patient's report (a path on this service).")
