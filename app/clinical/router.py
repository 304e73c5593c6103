from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from app.auth.dependencies import requires
from app.auth.permissions import Permission, allows
from app.auth.service import Principal
from app.clinical import (
    alerts,
    caseload,
    clinic_settings,
    measure_reports,
    report,
    report_links,
    series,
    service,
    webhooks,
)
from app.clinical import parameters as change_parameters
from app.clinical.change import Method
from app.clinical.destinations import policy_for
from app.clinical.measure_schemas import MeasureRead
from app.clinical.measures import MEASURE_IDS
from app.clinical.models import ReportLink
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
    CaseloadInstrument,
    CaseloadOpenAlerts,
    CaseloadRow,
    ChangeParametersSet,
    ChangeRead,
    ClinicSettingsRead,
    ClinicSettingsWrite,
    ClinicSettingsWritten,
    OutcomesRead,
    ParametersRead,
    ReportLinkCreate,
    ReportLinkIssued,
    ReportLinkRead,
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
link_router = APIRouter(route_class=AppRoute, prefix=report_links.PATH, tags=["report links"])

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


@patient_router.post("/report-links", status_code=201, response_model=ReportLinkIssued, tags=["report links"])
def create_report_link(
    patient_id: uuid.UUID,
    body: ReportLinkCreate,
    db: Db,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    guard: Idempotent,
) -> Response:
    """A link that opens this patient's report without an API key for `valid_minutes` (1 to 60): read-only, this
    patient's report page only, revocable, every use audited. Its page shows the alerts only if your role may read
    them. Frame it in an EHR page only from an origin in the clinic's `report_frame_origins`."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    issued = report_links.create(
        db,
        clinic_id=principal.clinic_id,
        patient_id=patient_id,
        created_by_key_id=principal.key_id,
        valid_minutes=body.valid_minutes,
        include_alerts=allows(principal.role, Permission.ALERTS_READ),
        pepper=settings.api_key_pepper.get_secret_value(),
    )
    payload = ReportLinkIssued(
        id=issued.link.id,
        patient_id=patient_id,
        url=report_links.url(settings.public_base, issued.token),
        expires_at=issued.link.expires_at,
    )
    return guard.respond(payload, status_code=201)


@patient_router.get("/report-links", tags=["report links"])
def list_report_links(
    patient_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
) -> Page[ReportLinkRead]:
    """The report links made for this patient, newest first, with their status (active, expired, revoked)."""
    patients.ensure_exists(db, clinic_id=principal.clinic_id, patient_id=patient_id)
    found = report_links.list_links(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, limit=page.limit + 1, offset=page.offset
    )
    return page.page(found, _link_read)


@patient_router.post("/report-links/{link_id}/revoke", response_model=ReportLinkRead, tags=["report links"])
def revoke_report_link(
    patient_id: uuid.UUID,
    link_id: uuid.UUID,
    db: Db,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    guard: Idempotent,
) -> Response:
    """Revoke a report link: it opens nothing from now on (410)."""
    link = report_links.revoke(
        db, clinic_id=principal.clinic_id, patient_id=patient_id, link_id=link_id, key_id=principal.key_id
    )
    return guard.respond(_link_read(link))


def _link_read(link: ReportLink) -> ReportLinkRead:
    return ReportLinkRead(
        id=link.id,
        patient_id=link.patient_id,
        created_at=link.created_at,
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        status=report_links.status_of(link, utcnow()),
        include_alerts=link.include_alerts,
    )


@link_router.get(
    "/{token}",
    response_class=HTMLResponse,
    responses={
        410: {**PROBLEM_RESPONSES[404], "description": "The link expired or was revoked (the detail says which)."}
    },
)
def open_report_link(
    token: Annotated[str, Path(pattern=report_links.TOKEN_PATTERN, description="The link's token (its URL).")],
    db: Db,
    registry: RegistryDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """A report link's page: the patient's report, read-only, without an API key (the token in the path is the
    credential). Refused once the link has expired or was revoked. Framed only by the clinic's
    `report_frame_origins`."""
    opened = report_links.open_link(db, token=token, pepper=settings.api_key_pepper.get_secret_value())
    patient = patients.get(db, clinic_id=opened.clinic_id, patient_id=opened.patient_id)
    built = report.build(
        db, registry, clinic_id=opened.clinic_id, patient=patient, include_alerts=opened.include_alerts
    )
    origins = clinic_settings.frame_origins(clinic_settings.get(db, clinic_id=opened.clinic_id))
    notice = report.LinkNotice(expires_at=opened.expires_at)
    return HTMLResponse(report.render_html(built, link=notice), headers=link_headers(origins))


def link_headers(origins: list[str] | None) -> dict[str, str]:
    """No caching, no Referer (the URL holds the token), framed only by the clinic's allowed origins."""
    ancestors = " ".join(origins) if origins else "'none'"
    headers = {
        **NO_STORE,
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "Content-Security-Policy": f"{REPORT_POLICY}; frame-ancestors {ancestors}",
    }
    if not origins:
        headers["X-Frame-Options"] = "DENY"
    return headers


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


@clinic_router.get("/caseload")
def get_caseload(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
) -> Page[CaseloadRow]:
    """One row per active patient (an open alert, a running schedule, or a measurement in the last 90 days), most in
    need first: open urgent alerts, then reliable deterioration, then missed assessments, then routine alerts, then
    assessments due now. Latest score, band and change category per instrument."""
    rows = _caseload(db, registry, principal)
    return page.page(rows[page.offset : page.offset + page.limit + 1], _caseload_read)


@clinic_router.get("/caseload.html", response_class=HTMLResponse)
def get_caseload_page(
    db: Db,
    registry: RegistryDep,
    principal: Annotated[Principal, requires(Permission.MEASUREMENTS_READ)],
    page: PageDep,
) -> HTMLResponse:
    """The caseload as a page in the report's style (times in the clinic's zone), each row linking to the patient's
    report."""
    rows = _caseload(db, registry, principal)
    zone = clinic_settings.zone_of(clinic_settings.get(db, clinic_id=principal.clinic_id))
    shown = rows[page.offset : page.offset + page.limit]
    page_html = report.render_caseload(
        shown,
        zone=zone,
        generated_at=utcnow(),
        with_alerts=allows(principal.role, Permission.ALERTS_READ),
        offset=page.offset,
        total=len(rows),
    )
    return HTMLResponse(page_html, headers={**NO_STORE, "Content-Security-Policy": REPORT_POLICY})


def _caseload(db: Db, registry: RegistryDep, principal: Principal) -> list[caseload.Row]:
    return caseload.build(
        db,
        registry,
        clinic_id=principal.clinic_id,
        now=utcnow(),
        with_alerts=allows(principal.role, Permission.ALERTS_READ),
    )


def _caseload_read(row: caseload.Row) -> CaseloadRow:
    return CaseloadRow(
        patient_id=row.patient_id,
        identifiers=row.identifiers,
        instruments=[
            CaseloadInstrument(
                instrument=item.instrument,
                score=item.score,
                direction=item.direction,
                value=item.value,
                band=item.band,
                measured_at=item.measured_at,
                change_category=item.category,
                method=item.method,
            )
            for item in row.latest
        ],
        last_measured_at=row.last_measured_at,
        open_alerts=CaseloadOpenAlerts(urgent=row.urgent_alerts, routine=row.routine_alerts)
        if row.with_alerts
        else None,
        assessments_missed=row.assessments_missed,
        assessments_due=row.assessments_due,
        deteriorated=row.deteriorated,
        progress=row.progress,
        report=f"/v1/patients/{row.patient_id}/report",
    )


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
router.include_router(link_router)


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
