"""The clinician report: one server-rendered HTML page with a chart per instrument, the change table and the alerts.

No script and nothing external: charts are inline SVG, styles are inline, and the page prints as it shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import clinic_is_synthetic
from app.clinical import alerts, charts, clinic_settings, points, series
from app.clinical.change import Method, MissingParameter
from app.clinical.charts import Chart, Line
from app.clinical.risk import RISK_FLAGS
from app.clinical.schemas import AlertRead
from app.clinical.service import Change, patient_change
from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients.models import Patient
from app.scoring.definition import InstrumentDefinition, Score

CaseloadRowLike = Any
"""A row of ``app.clinical.caseload`` (which imports this module, so it is not named here)."""
REPORT_ORDER = ("phq9", "gad7", "bdi2", "fcs_from_others", "fcs_for_self", "fcs_for_others", "scs_sf", "scs", "fscrs")
"""Depression and anxiety first, then fears of compassion, self-compassion and self-criticism."""
METHODS = (Method.JACOBSON_TRUAX, Method.FIXED_THRESHOLD)
MAX_ALERTS = 200
DIRECTION_WORDS = {"lower_is_better": "lower is better", "higher_is_better": "higher is better"}
PARAMETER_WORDS = {
    "reliability": "a reliability coefficient",
    "clinical_mean": "the mean of a clinical sample",
    "clinical_sd": "the standard deviation of a clinical sample",
    "functional_mean": "the mean of a non-clinical sample",
    "functional_sd": "the standard deviation of a non-clinical sample",
    "cutoff_type": "a cut-off rule",
    "caseness_cutoff": "a caseness cut-off score",
    "minimum_change": "the number of points that counts as reliable change",
    "response_reduction": "the reduction that counts as response",
    "remission_below": "the score below which a patient counts as remitted",
}
"""What each change parameter is, in words (the names of ``app.clinical.change.Parameters``)."""
OUTPUT_WORDS = {
    "rci": "the reliable change index",
    "reliable_change_threshold": "the reliable change threshold",
    "category": "the change category",
    "caseness_baseline": "caseness",
    "caseness_latest": "caseness",
    "recovered": "recovery",
    "harmed": "harm",
    "response": "response",
    "remission": "remission",
}
"""What stays unknown without a parameter, in words (``MissingParameter.needed_for``)."""


def direction_words(direction: str) -> str:
    """``lower is better`` or ``higher is better``, from the score's definition."""
    return DIRECTION_WORDS.get(direction, direction.replace("_", " "))


def flag_words(definition: InstrumentDefinition | None, key: str) -> str:
    """A flag named plainly from the instrument's definition: which item, and the rule that raised it (``Item 9
    positive (item score 1 or more)``, ``Item 9 not answered``). No item wording: it is not shipped for every
    instrument, and only the definition's own facts are restated. A flag the definition does not name (an alert kind
    of another origin) is its key in words."""
    for flag in definition.flags if definition is not None else ():
        if key == flag.key:
            state = key.removeprefix(f"item{flag.item}_").replace("_", " ")
            return f"Item {flag.item} {state} (item score {flag.at_least} or more)"
        if key == flag.missing_flag:
            return f"Item {flag.item} not answered"
    return key.replace("_", " ").capitalize()


def missing_words(missing: MissingParameter) -> str:
    """``a reliability coefficient (without it: the reliable change index, the change category)``."""
    outputs = list(dict.fromkeys(OUTPUT_WORDS.get(name, name.replace("_", " ")) for name in missing.needed_for))
    what = PARAMETER_WORDS.get(missing.name, missing.name.replace("_", " "))
    return f"{what} (without it, {', '.join(outputs)} cannot be given)"


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` in the clinic's zone; in UTC when the zone's offset would carry it past the years a datetime holds
    (a stored year 1 or 9999)."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        return moment.astimezone(UTC)


def when(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-11-20 10:30 +01:00``: a time as the clinic reads it, with its offset from UTC."""
    shown = local(moment, zone)
    offset = shown.strftime("%z")
    return f"{shown.year:04d}-{shown:%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def day(moment: datetime, zone: ZoneInfo) -> str:
    """The local calendar day of a moment (``2026-11-20``)."""
    shown = local(moment, zone)
    return f"{shown.year:04d}-{shown:%m-%d}"


@dataclass(frozen=True)
class ChangeRow:
    definition: InstrumentDefinition
    score: Score
    latest: points.Point | None
    change: Change | None
    note: str | None = None


@dataclass(frozen=True)
class TableRow:
    """One measurement in a chart's data table (its text alternative): every charted score of it."""

    measured_at: datetime
    session_number: int | None
    cells: tuple[points.Point, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    definition: InstrumentDefinition
    chart: Chart
    svg: str
    rows: tuple[TableRow, ...]
    point_count: int
    notes: tuple[str, ...]
    """Caveats of the charted scores' bands (e.g. "a rough guide, not clinical norms")."""


@dataclass
class Report:
    patient: Patient
    generated_at: datetime
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    """The clinic's time zone: every time on the page is shown in it, with its offset."""
    sections: list[Section] = field(default_factory=list)
    changes: list[ChangeRow] = field(default_factory=list)
    alerts: list[AlertRead] | None = None
    crisis_text: str | None = None
    short_names: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, InstrumentDefinition] = field(default_factory=dict)
    synthetic: bool = False
    """The clinic is a synthetic one (generated data): the report says so at its top."""

    def when(self, moment: datetime) -> str:
        return when(moment, self.zone)

    def day(self, moment: datetime) -> str:
        return day(moment, self.zone)

    def flag(self, instrument: str, key: str) -> str:
        return flag_words(self.definitions.get(instrument), key)

    @property
    def identifiers(self) -> list[str]:
        """The patient's external identifiers (``MRN-123``), as the clinic knows the patient."""
        return [identifier.value for identifier in self.patient.identifiers]


@dataclass(frozen=True)
class LinkNotice:
    """What the page says when a report link opened it: until when the link works."""

    expires_at: datetime


def chart_keys(definition: InstrumentDefinition) -> tuple[Score, ...]:
    """The primary score, or every score of an instrument without one (FSCRS)."""
    if definition.primary_score is not None:
        return (definition.score(definition.primary_score),)
    return definition.scores


def instruments_of(
    db: Session, registry: InstrumentRegistry, *, clinic_id: uuid.UUID, patient_id: uuid.UUID
) -> list[InstrumentDefinition]:
    ids = set(
        db.scalars(
            select(Measurement.instrument_id)
            .where(
                Measurement.clinic_id == clinic_id,
                Measurement.patient_id == patient_id,
                Measurement.is_current.is_(True),
            )
            .distinct()
        )
    )
    ordered = [i for i in REPORT_ORDER if i in ids] + sorted(ids - set(REPORT_ORDER))
    return [registry.definitions[i] for i in ordered if i in registry.definitions]


def best_change(
    db: Session, *, clinic_id: uuid.UUID, patient_id: uuid.UUID, definition: InstrumentDefinition, score: Score
) -> tuple[Change | None, str | None]:
    """Change by the first method with parameters (Jacobson–Truax, then the fixed threshold); else say why not."""
    fallback: Change | None = None
    for method in METHODS:
        try:
            change = patient_change(
                db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score, method=method
            )
        except InvalidInput:
            return None, "fewer than two scored measurements"
        if change.assessment.category is not None:
            return change, None
        fallback = fallback or change
    return fallback, None


def chart_for(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    definition: InstrumentDefinition,
    scores: tuple[Score, ...],
    zone: ZoneInfo,
) -> tuple[Chart, list[ChangeRow]]:
    lines: list[Line] = []
    rows: list[ChangeRow] = []
    for score in scores:
        data = series.load(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
        lines.append(Line(key=score.key, label=score.label, points=data.points, direction=score.direction.value))
        change, note = best_change(db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, score=score)
        rows.append(ChangeRow(definition, score, data.scored[-1] if data.scored else None, change, note))
    single = scores[0] if len(scores) == 1 else None
    change = rows[0].change if single else None
    title = chart_title(definition, single)
    chart = Chart(
        chart_id=f"chart-{definition.id}",
        title=title,
        description=describe(definition, lines, change, zone),
        minimum=min(score.minimum for score in scores),
        maximum=max(score.maximum for score in scores),
        direction=single.direction.value if single else "lower_is_better",
        lines=tuple(lines),
        bands=single.bands if single else (),
        baseline=change.baseline.value if change else None,
        reliable_change_threshold=change.assessment.reliable_change_threshold if change else None,
        cutoff=change.assessment.cutoff if change else None,
        zone=zone.key,
    )
    return chart, rows


def chart_title(definition: InstrumentDefinition, score: Score | None) -> str:
    if score is None:
        return definition.name
    if score.label.startswith(definition.short_name):
        return score.label
    return f"{definition.short_name}: {score.label}"


def describe(definition: InstrumentDefinition, lines: list[Line], change: Change | None, zone: ZoneInfo) -> str:
    """The text alternative of a chart, read before its data table (dates are the clinic's local days)."""
    parts: list[str] = []
    for line in lines:
        scored = line.scored
        if not scored:
            parts.append(f"{line.label}: no scored measurements.")
            continue
        first, last = scored[0], scored[-1]
        parts.append(
            f"{line.label} ({direction_words(line.direction)}): {len(scored)} scored measurement(s) from "
            f"{day(first.measured_at, zone)} to {day(last.measured_at, zone)}; "
            f"first {_num(first.value)}{_band(first)}, latest {_num(last.value)}{_band(last)}."
        )
    if change is not None and change.assessment.category is not None:
        parts.append(f"Change: {change.assessment.category.value.replace('_', ' ')} ({change.method.value}).")
    risk = {point.measurement_id for line in lines for point in line.points if set(point.flags) & set(RISK_FLAGS)}
    if risk:
        named = "; ".join(
            flag_words(definition, key) for key in RISK_FLAGS if any(f.key == key for f in definition.flags)
        )
        parts.append(f"{named or 'Risk flag'} at {len(risk)} measurement(s).")
    return " ".join(parts)


def table_rows(lines: tuple[Line, ...]) -> tuple[TableRow, ...]:
    """Every line holds the same measurements (one instrument), so the rows pair their points by position."""
    return tuple(
        TableRow(
            measured_at=points[0].measured_at,
            session_number=points[0].session_number,
            cells=points,
            flags=points[0].flags,
        )
        for points in zip(*(line.points for line in lines), strict=True)
    )


def build(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    patient: Patient,
    include_alerts: bool,
) -> Report:
    short_names = {key: definition.short_name for key, definition in registry.definitions.items()}
    settings = clinic_settings.get(db, clinic_id=clinic_id)
    zone = clinic_settings.zone_of(settings)
    report = Report(
        patient=patient,
        generated_at=utcnow(),
        zone=zone,
        short_names=short_names,
        definitions=dict(registry.definitions),
        synthetic=clinic_is_synthetic(db, clinic_id=clinic_id),
    )
    for definition in instruments_of(db, registry, clinic_id=clinic_id, patient_id=patient.id):
        chart, rows = chart_for(
            db,
            clinic_id=clinic_id,
            patient_id=patient.id,
            definition=definition,
            scores=chart_keys(definition),
            zone=zone,
        )
        report.changes.extend(rows)
        report.sections.append(
            Section(
                definition=definition,
                chart=chart,
                svg=charts.render(chart),
                rows=table_rows(chart.lines),
                point_count=sum(len(line.scored) for line in chart.lines),
                notes=tuple(score.bands_note for score in chart_keys(definition) if score.bands and score.bands_note),
            )
        )
    if include_alerts:
        found = alerts.list_alerts(db, clinic_id=clinic_id, limit=MAX_ALERTS, offset=0, patient_id=patient.id)
        report.alerts = alerts.to_reads(db, clinic_id=clinic_id, found=found)
        report.crisis_text = settings.crisis_text if settings else None
    return report


def chart_svg(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    patient_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score | None,
) -> str:
    scores = (score,) if score is not None else chart_keys(definition)
    zone = clinic_settings.zone_of(clinic_settings.get(db, clinic_id=clinic_id))
    chart, _ = chart_for(
        db, clinic_id=clinic_id, patient_id=patient_id, definition=definition, scores=scores, zone=zone
    )
    if not any(line.points for line in chart.lines):
        raise NotFound(f"no {definition.id} measurements for this patient")
    return charts.render(chart, standalone=True)


def render_html(report: Report, *, link: LinkNotice | None = None) -> str:
    """The page; ``link``: opened through a report link (read-only), whose expiry the page states."""
    return (
        _environment()
        .get_template("report.html")
        .render(report=report, risk_flags=RISK_FLAGS, short_names=report.short_names, link=link)
    )


def render_caseload(
    rows: Sequence[CaseloadRowLike],
    *,
    zone: ZoneInfo,
    generated_at: datetime,
    with_alerts: bool,
    offset: int,
    total: int,
) -> str:
    """The caseload page (``app.clinical.caseload``), in the report's style and the clinic's time zone."""
    return (
        _environment()
        .get_template("caseload.html")
        .render(
            rows=rows,
            zone=zone,
            when=lambda moment: when(moment, zone),
            day=lambda moment: day(moment, zone),
            generated_at=generated_at,
            with_alerts=with_alerts,
            offset=offset,
            total=total,
        )
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _num
    environment.filters["direction"] = direction_words
    environment.filters["missing"] = missing_words
    environment.filters["parameter"] = lambda name: PARAMETER_WORDS.get(name, name.replace("_", " "))
    environment.filters["signed"] = lambda value: f"{'+' if value > 0 else ''}{_num(value)}"
    return environment


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _band(point: points.Point) -> str:
    return f" ({point.band.replace('_', ' ')})" if point.band else ""
