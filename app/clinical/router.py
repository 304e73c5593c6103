from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission, allows
from app.auth.service import Principal
from app.clinical import alerts, clinic_settings, measure_reports, report, series, service, webhooks
from app.clinical import parameters as change_parameters
from app.clinical.change import Method
from app.clinical.destinations import policy_for
from app.clinical.measure_schemas import MeasureRead
from app.clinical.measures import MEASURE_IDS
from app.clinical.progress import service as progress
from app.clinical.progress import tables as expected_response
from app.clinical.progress.schemas import (
    ExpectedResponseCited,
    ExpectedResponseFit,
    ExpectedResponseRead,
    ProgressRead,
)
from app.clinical.schemas import (
    AlertAcknowledge,
    AlertKind,
    AlertPriority,
    AlertRead,
    ChangeParametersSet,
    ChangeRead,
    ClinicSettingsRead,
    ClinicSettingsWrite,
    ClinicSettingsWritten,
    OutcomesRead,
    ParametersRead,
    TrajectoryRead,
    WebhookDeliveryRead,
    WebhookSecretIssued,
)
from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.lifecycle import AppRoute, BoundedReadDb, Db, SettingsDep
from app.core.pagination import PageDep
from app.core.problems import PROBLEM_RESPONSES
from app.core.responses import values_response
from app.core.schemas import FilterTime, Page
from app.idempotency.service import Idempotent
from app.instruments.dependencies import RegistryDep
from app.patients import service as patients

router = APIRouter(route_class=AppRoute, responses=PROBLEM_RESPONSES)
patient_router = APIRouter(route_class=AppRoute, prefix="/v1/patients/{patient_id}", tags=["clinical change"])
clinic_router = APIRouter(route_class=AppRoute, prefix="/v1/clinic", tags=["clinic outcomes and alerts"])

Instrument = Annotated[str, Query(min_length=1, max_length=50, description="Instrument id, e.g. `phq9`.")]
ScoreKey = Annotated[
    str | None, Query(max_length=50, description="Score key; defaults to the instrument's primary score.")
]
MethodQuery = Annotated[Method, Query(description="How reliable change is judged.")]
NO_STORE = {"Cache-Control": "no-store"}
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


@patient_router.get("/trajectory", response_model=TrajectoryRead)
def get_trajectory(
    patient_id: uuid.UUID,
    db: BoundedReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    instrument: Instrument,
    score: ScoreKey = None,
) -> Response:
    """One score over time: session number, days since the first point, band, prorated mark and flags per point."""
    try:
        definition, spec = series.resolve_score(registry, instrument, score)
    except InvalidInput:
        patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)  # an unknown patient first
        raise
    data = series.load(db, clinic_id=principal.clinic_id, patient_id=patient_id, definition=definition, score=spec)
    if not data.points and not data.other_family_points:  # a row of the clinic's is of its patient (foreign key)
        patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    return values_response(service.trajectory_values(patient_id, data))


@patient_router.get("/change")
def get_change(
    patient_id: uuid.UUID,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    instrument: Instrument,
    score: ScoreKey = None,
    method: MethodQuery = Method.JACOBSON_TRUAX,
    baseline_id: Annotated[
        uuid.UUID | None, Query(alias="from", description="Measurement id of the baseline (default: the first).")
    ] = None,
    latest_id: Annotated[
        uuid.UUID | None, Query(alias="to", description="Measurement id to compare with it (default: the latest).")
    ] = None,
) -> ChangeRead:
    """Reliable change and clinical significance between two scores, with the parameters used and their sources."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    definition, spec = series.resolve_score(registry, instrument, score)
    change = service.patient_change(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        definition=definition,
        score=spec,
        method=method,
        baseline_id=baseline_id,
        latest_id=latest_id,
    )
    return service.change_read(patient_id, change)


@patient_router.get("/progress")
def get_progress(
    patient_id: uuid.UUID,
    db: BoundedReadDb,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    instrument: Instrument,
    score: ScoreKey = None,
) -> ProgressRead:
    """Is the patient on track? `status` (on_track, not_on_track, reliable_deterioration, recovered,
    insufficient_data), the `method` (the clinic's expected-response table, or the reliable change rule labelled as
    such), the expected band at each measurement and the reasons in words."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    definition, spec = series.resolve_score(registry, instrument, score)
    ctx = progress.context(db, clinic_id=principal.clinic_id, definition=definition, score=spec)
    points = series.load_points(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, definition=definition, score=spec
    )
    return progress.to_read(patient_id, ctx.judge(points), ctx)


@patient_router.get("/report", response_class=HTMLResponse)
def get_report(
    patient_id: uuid.UUID,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
) -> HTMLResponse:
    """The clinician report (HTML, printable): a chart per instrument, the change table and the risk alerts."""
    patient = patients.get(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    built = report.build(
        db,
        registry,
        clinic_id=principal.clinic_id,
        patient=patient,
        include_alerts=allows(principal.role, Permission.ALERTS_READ),
    )
    return HTMLResponse(report.render_html(built), headers={**NO_STORE, "Content-Security-Policy": REPORT_POLICY})


@patient_router.get(
    "/chart.svg",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "The chart as a standalone SVG document.",
        }
    },
)
def get_chart(
    patient_id: uuid.UUID,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    instrument: Instrument,
    score: ScoreKey = None,
) -> Response:
    """One instrument's chart as SVG, for an EHR to embed (with a title and a text description inside)."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    definition = series.resolve_definition(registry, instrument)
    spec = series.resolve_score(registry, instrument, score)[1] if score else None
    svg = report.chart_svg(db, clinic_id=principal.clinic_id, patient_id=patient_id, definition=definition, score=spec)
    return Response(svg, media_type="image/svg+xml", headers=NO_STORE)


@clinic_router.get("/outcomes")
def get_outcomes(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    instrument: Instrument,
    score: ScoreKey = None,
    method: MethodQuery = Method.JACOBSON_TRUAX,
    measured_from: Annotated[FilterTime | None, Query(alias="from")] = None,
    measured_to: Annotated[FilterTime | None, Query(alias="to")] = None,
) -> OutcomesRead:
    """Counts and rates of recovered, improved, unchanged, deteriorated and harmed patients over the clinic."""
    definition, spec = series.resolve_score(registry, instrument, score)
    return service.clinic_outcomes(
        db,
        clinic_id=principal.clinic_id,
        definition=definition,
        score=spec,
        method=method,
        measured_from=measured_from,
        measured_to=measured_to,
    )


@clinic_router.get("/measures/{measure_id}")
def get_measure(
    measure_id: Annotated[str, Path(max_length=100, description=f"One of: {', '.join(MEASURE_IDS)}.")],
    db: Db,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    period_start: Annotated[date, Query(description="First day of the measurement period (YYYY-MM-DD).")],
    period_end: Annotated[date, Query(description="Last day of the measurement period, included.")],
) -> MeasureRead:
    """A depression quality measure over the clinic's PHQ-9 totals: denominator, numerators, rates and the care gaps
    (patients with an index and no PHQ-9 in their window yet), with what the measure's source requires and this
    service does not store (diagnoses, encounters, age, exclusions)."""
    measure = measure_reports.resolve(measure_id)
    measured = measure_reports.period(period_start, period_end)
    result = measure_reports.evaluate_for_clinic(db, clinic_id=principal.clinic_id, measure=measure, measured=measured)
    return measure_reports.to_read(db, clinic_id=principal.clinic_id, result=result, now=utcnow())


@clinic_router.get("/alerts")
def list_alerts(
    db: Db,
    principal: Annotated[Principal, requires(Permission.ALERTS_READ)],
    page: PageDep,
    acknowledged: Annotated[bool | None, Query(description="Only (un)acknowledged alerts.")] = None,
    patient_id: uuid.UUID | None = None,
    kind: Annotated[AlertKind | None, Query(description="Only alerts of this kind.")] = None,
    priority: Annotated[AlertPriority | None, Query(description="Only `urgent` or only `routine` alerts.")] = None,
    historical: Annotated[bool | None, Query(description="Only (non-)historical alerts.")] = None,
) -> Page[AlertRead]:
    """Alerts (item-9 risk flags, `item9_missing` prompts, …), unacknowledged first, with the patient, the
    measurement and the clinic's crisis text."""
    found = alerts.list_alerts(
        db,
        clinic_id=principal.clinic_id,
        limit=page.limit + 1,
        offset=page.offset,
        acknowledged=acknowledged,
        patient_id=patient_id,
        kind=kind,
        priority=priority,
        historical=historical,
    )
    reads = alerts.to_reads(db, clinic_id=principal.clinic_id, found=found)
    return page.page(reads, lambda read: read)


@clinic_router.get("/alerts/{alert_id}")
def get_alert(
    alert_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.ALERTS_READ)],
) -> AlertRead:
    """One risk alert."""
    found = alerts.get(db, clinic_id=principal.clinic_id, alert_id=alert_id)
    return alerts.to_reads(db, clinic_id=principal.clinic_id, found=[found])[0]


@clinic_router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge_alert(
    alert_id: uuid.UUID,
    body: AlertAcknowledge,
    db: Db,
    principal: Annotated[Principal, requires(Permission.ALERTS_ACKNOWLEDGE)],
    guard: Idempotent,
) -> Response:
    """Acknowledge an alert with a note; who and when are recorded with it. An alert is acknowledged once."""
    found = alerts.acknowledge(
        db, clinic_id=principal.clinic_id, alert_id=alert_id, key_id=principal.key_id, note=body.note
    )
    return guard.respond(alerts.to_reads(db, clinic_id=principal.clinic_id, found=[found])[0])


@clinic_router.get("/settings")
def get_settings(
    db: Db,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
) -> ClinicSettingsRead:
    """The clinic's crisis text, alert webhook and paging, and whether it is a synthetic clinic."""
    return clinic_settings.read(db, clinic_id=principal.clinic_id)


def vetted_settings(body: ClinicSettingsWrite, settings: SettingsDep) -> ClinicSettingsWrite:
    """The new settings, their webhook URL checked (its host resolved) before the request takes a write turn."""
    clinic_settings.vet(body, policy_for(settings))
    return body


@clinic_router.put("/settings")
def put_settings(
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    body: Annotated[ClinicSettingsWrite, Depends(vetted_settings)],
    settings: SettingsDep,
    db: Db,
) -> ClinicSettingsWritten:
    """Replace the clinic's crisis text and alert webhook (an omitted field is cleared). A webhook URL whose host is
    or resolves to a non-public address is refused (422). Setting the first webhook URL issues its signing secret,
    in this response only; clearing the URL drops it."""
    return clinic_settings.put(
        db,
        clinic_id=principal.clinic_id,
        key_id=principal.key_id,
        data=body,
        signing_key=settings.webhook_signing_key.get_secret_value(),
    )


@clinic_router.post("/webhook-secret", status_code=201, response_model=WebhookSecretIssued)
def rotate_webhook_secret(
    settings: SettingsDep,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    db: Db,
    guard: Idempotent,
) -> Response:
    """Issue a new signing secret for the clinic's webhook, shown in this response only (409 without a webhook).
    The previous secret still signs deliveries, as a second signature, for 24 hours."""
    issued = clinic_settings.rotate_webhook_secret(
        db,
        clinic_id=principal.clinic_id,
        key_id=principal.key_id,
        signing_key=settings.webhook_signing_key.get_secret_value(),
    )
    return guard.respond(issued, status_code=201)


@clinic_router.get("/change-parameters")
def list_change_parameters(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
) -> list[ParametersRead]:
    """Every change-parameter set in force: the clinic's own and the shipped defaults it has not replaced."""
    definitions = [registry.definitions[i] for i in registry.ids()]
    return change_parameters.effective(db, clinic_id=principal.clinic_id, definitions=definitions)


@clinic_router.put("/change-parameters/{instrument}/{score}/{method}")
def put_change_parameters(
    instrument: str,
    score: str,
    method: Method,
    body: ChangeParametersSet,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
) -> ParametersRead:
    """Set the clinic's own parameters for one score and method, with a citation; they replace the defaults."""
    definition, spec = series.resolve_score(registry, instrument, score)
    row = change_parameters.set_for_clinic(
        db,
        clinic_id=principal.clinic_id,
        key_id=principal.key_id,
        definition=definition,
        score=spec,
        method=method,
        data=body,
    )
    return change_parameters.to_read(
        change_parameters.from_row(row), instrument=definition.id, score=spec, updated_at=row.updated_at
    )


@clinic_router.delete("/change-parameters/{instrument}/{score}/{method}", status_code=204)
def delete_change_parameters(
    instrument: str,
    score: str,
    method: Method,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
) -> Response:
    """Remove the clinic's own parameters; the shipped defaults (if any) apply again."""
    definition, spec = series.resolve_score(registry, instrument, score)
    change_parameters.delete_for_clinic(
        db, clinic_id=principal.clinic_id, instrument=definition.id, score=spec.key, method=method
    )
    return Response(status_code=204)


@clinic_router.post("/expected-response/{instrument_id}", status_code=201, response_model=ExpectedResponseRead)
def fit_expected_response(
    instrument_id: str,
    body: ExpectedResponseFit,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    guard: Idempotent,
) -> Response:
    """Fit an expected-response table from the clinic's own completed courses (a mixed model of the score on
    ln(1 + weeks since baseline), conditioned on the baseline). 409 below the minimum number of courses."""
    definition, spec = series.resolve_score(registry, instrument_id, body.score)
    row = expected_response.fit_for_clinic(
        db, clinic_id=principal.clinic_id, key_id=principal.key_id, definition=definition, score=spec, data=body
    )
    return guard.respond(expected_response.to_read(row), status_code=201)


@clinic_router.post("/expected-response/{instrument_id}/cited", status_code=201, response_model=ExpectedResponseRead)
def load_expected_response(
    instrument_id: str,
    body: ExpectedResponseCited,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    guard: Idempotent,
) -> Response:
    """Load a published expected-response table (the same model form's coefficients) with its citation."""
    definition, spec = series.resolve_score(registry, instrument_id, body.score)
    row = expected_response.load_cited(
        db, clinic_id=principal.clinic_id, key_id=principal.key_id, definition=definition, score=spec, data=body
    )
    return guard.respond(expected_response.to_read(row), status_code=201)


@clinic_router.get("/expected-response")
def list_expected_response(
    db: Db,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
) -> list[ExpectedResponseRead]:
    """The clinic's current expected-response table of each score it has one for."""
    return [expected_response.to_read(row) for row in expected_response.list_current(db, clinic_id=principal.clinic_id)]


@clinic_router.get("/expected-response/{instrument_id}")
def get_expected_response(
    instrument_id: str,
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.OUTCOMES_READ)],
    score: ScoreKey = None,
) -> ExpectedResponseRead:
    """The clinic's current expected-response table of one score (404 when it has none)."""
    definition, spec = series.resolve_score(registry, instrument_id, score)
    return expected_response.to_read(
        expected_response.get_current(db, clinic_id=principal.clinic_id, instrument=definition.id, score=spec.key)
    )


router.include_router(patient_router)
router.include_router(clinic_router)


DeliveryStatus = Annotated[
    Literal["pending", "delivered", "failed", "withdrawn"] | None, Query(description="Only deliveries in this state.")
]


@clinic_router.get("/webhook-deliveries")
def list_webhook_deliveries(
    db: Db,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    page: PageDep,
    status: DeliveryStatus = None,
) -> Page[WebhookDeliveryRead]:
    """The clinic's webhook deliveries, newest first: what each was for and how its attempts went."""
    found = webhooks.list_deliveries(
        db, clinic_id=principal.clinic_id, status=status, limit=page.limit + 1, offset=page.offset
    )
    return page.page(found, WebhookDeliveryRead.model_validate)


@clinic_router.post("/webhook-deliveries/{delivery_id}/retry", response_model=WebhookDeliveryRead)
def retry_webhook_delivery(
    delivery_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.CLINIC_CONFIGURE)],
    guard: Idempotent,
) -> Response:
    """Give a failed delivery (no attempt left) a new round of attempts, the first at once (409 unless failed)."""
    delivery = webhooks.retry(db, clinic_id=principal.clinic_id, delivery_id=delivery_id)
    return guard.respond(WebhookDeliveryRead.model_validate(delivery))
