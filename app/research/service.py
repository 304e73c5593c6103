"""Research use cases: record exports, check what is asked for, and load a clinic's data as an analysis panel."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, String, case, select, type_coerce
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.core.errors import FieldError, InvalidInput
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.research import analysis
from app.research.export import ExportSpec, first_measurements
from app.research.models import ResearchExport, ResearchProject
from app.research.schemas import ExportFormat, LaggedEffectsRequest, LaggedEffectsResponse
from app.research.timeline import days_between_in_sql
from app.scoring.definition import InstrumentDefinition

PANEL_YIELD_PER = 5000


def select_definitions(
    registry: InstrumentRegistry, instruments: Sequence[str] | None
) -> tuple[InstrumentDefinition, ...]:
    """The named instruments (every instrument when none is named), in id order; unknown names are a 422."""
    names = sorted({name for name in instruments or () if name}) or registry.ids()
    unknown = [name for name in names if name not in registry.definitions]
    if unknown:
        raise InvalidInput(
            f"unknown instrument(s): {', '.join(unknown)}",
            errors=[
                FieldError(
                    field="instruments", message=f"unknown instrument {name!r}", value=name, allowed=registry.ids()
                )
                for name in unknown
            ],
        )
    return tuple(registry.definitions[name] for name in names)


def record_export(
    db: Session,
    *,
    principal: Principal,
    spec: ExportSpec,
    export_format: ExportFormat,
    project: ResearchProject | None,
) -> ResearchExport:
    """Record who exported what, and when, in a write transaction that commits before any data is sent.

    Call it last in the handler (after a ``.sav``/``.dta`` file is built), so SQLite's write lock is held for a
    moment only. The audit trail records the request itself (route, key, clinic); this row adds the parameters, and
    ``identified`` marks the exports an auditor must review.
    """
    entry = ResearchExport(
        clinic_id=principal.clinic_id,
        api_key_id=principal.key_id,
        role=principal.role.value,
        identified=spec.identified,
        parameters={
            "format": export_format.value,
            "layout": spec.layout.value,
            "level": spec.level.value,
            "instruments": [definition.id for definition in spec.definitions],
            "from": spec.measured_from.isoformat() if spec.measured_from else None,
            "to": spec.measured_to.isoformat() if spec.measured_to else None,
            "project": project.name if project is not None else None,
        },
        research_project_id=project.id if project is not None else None,
    )
    db.add(entry)
    db.flush()
    return entry


def list_exports(db: Session, *, clinic_id: uuid.UUID, identified_only: bool = False) -> list[ResearchExport]:
    query = select(ResearchExport).where(ResearchExport.clinic_id == clinic_id)
    if identified_only:
        query = query.where(ResearchExport.identified.is_(True))
    return list(db.scalars(query.order_by(ResearchExport.created_at, ResearchExport.id)))


def _variable(registry: InstrumentRegistry, reference: str, field: str) -> tuple[str, str]:
    instrument, _, key = reference.partition(".")
    definition = registry.definitions.get(instrument)
    if definition is None:
        raise InvalidInput(
            f"unknown instrument {instrument!r} in {reference!r}",
            errors=[FieldError(field=field, message="unknown instrument", value=reference, allowed=registry.ids())],
        )
    keys = [spec.key for spec in definition.scores]
    if key not in keys:
        raise InvalidInput(
            f"{instrument} has no score {key!r}",
            errors=[
                FieldError(
                    field=field,
                    message=f"{instrument} has no score {key!r}",
                    value=reference,
                    allowed=[f"{instrument}.{k}" for k in keys],
                )
            ],
        )
    return instrument, key


def load_panel(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    variables: Sequence[tuple[str, str]],
    patients: Select[Any] | None = None,
) -> pd.DataFrame:
    """One row per patient-week with a column ``<instrument>.<score>`` per variable (the week's last value).

    ``patients``: only these (a research project's consenting patients); every patient of the clinic if None (the
    operator's command line).

    Weeks are calendar weeks since each patient's first measurement of any instrument, as in the exports. A week's
    last measurement of an instrument gives its values, a null score included; a variable whose instrument was not
    measured that week is missing. Rows come patient by patient, weeks in order.

    The database reads the values out of the scores and counts the days, so no row's JSON is decoded in Python
    (bench/README.md, issue 18's second pass). Rows come ordered by patient and time, so a patient-week's rows are
    consecutive and the panel is built from their runs with numpy.
    """
    first = first_measurements(clinic_id)
    instruments = sorted({instrument for instrument, _key in variables})
    query = (
        select(
            # As stored (SQLite: hex text), made a UUID once per patient.
            type_coerce(Measurement.patient_id, String()).label("patient_id"),
            Measurement.instrument_id,
            days_between_in_sql(first.c.first_at, Measurement.measured_at).label("days"),
            # Only the row's own instrument's values: its other columns are never read.
            *(
                case((Measurement.instrument_id == instrument, Measurement.scores[(key, "value")].as_float()))
                for instrument, key in variables
            ),
        )
        .join(first, first.c.patient_id == Measurement.patient_id)
        .where(
            Measurement.clinic_id == clinic_id,
            Measurement.is_current.is_(True),
            Measurement.instrument_id.in_(instruments),
        )
        .order_by(Measurement.patient_id, Measurement.measured_at, Measurement.id)
    )
    if patients is not None:
        query = query.where(Measurement.patient_id.in_(patients))
    codes_of: dict[str | uuid.UUID, int] = {}
    codes: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    days: list[np.ndarray] = []
    values: list[np.ndarray] = []
    kind_of = {instrument: position for position, instrument in enumerate(instruments)}
    # The session's Core connection: no ORM loading step per row.
    for partition in db.connection().execute(query.execution_options(yield_per=PANEL_YIELD_PER)).partitions():
        stored, instrument_ids, day_counts, *columns = zip(*partition, strict=True)
        codes.append(np.fromiter((codes_of.setdefault(p, len(codes_of)) for p in stored), np.int64, len(stored)))
        kinds.append(np.fromiter((kind_of[i] for i in instrument_ids), np.int64, len(stored)))
        days.append(np.array(day_counts, dtype=np.int64))
        values.append(np.array(columns, dtype=np.float64).reshape(len(variables), len(stored)))
    code = np.concatenate(codes) if codes else np.empty(0, np.int64)
    kind = np.concatenate(kinds) if kinds else np.empty(0, np.int64)
    week = (np.concatenate(days) if days else np.empty(0, np.int64)) // 7
    value = np.concatenate(values, axis=1) if values else np.empty((len(variables), 0))
    # A patient-week's rows are consecutive: a new cell starts wherever the patient or the week changes.
    starts = np.ones(len(code), dtype=bool)
    starts[1:] = (code[1:] != code[:-1]) | (week[1:] != week[:-1])
    cell = np.cumsum(starts) - 1
    n_cells = int(starts.sum())
    names = [f"{instrument}.{key}" for instrument, key in variables]
    columns_out: dict[str, Any] = {}
    for position, (instrument, _key) in enumerate(variables):
        rows = np.flatnonzero(kind == kind_of[instrument])
        # The instrument's last row in each cell: the next row of the instrument is in a later cell, or none.
        last = rows[np.append(cell[rows][1:] != cell[rows][:-1], True)] if len(rows) else rows
        column = np.full(n_cells, np.nan)
        column[cell[last]] = value[position, last]
        columns_out[names[position]] = column
    ids = [str(p if isinstance(p, uuid.UUID) else uuid.UUID(hex=p)) for p in codes_of]
    data = {"patient": [ids[c] for c in code[starts]], "week": week[starts].tolist(), **columns_out}
    frame = pd.DataFrame(data if n_cells else None, columns=["patient", "week", *names])
    return frame.astype(dict.fromkeys(names, "float64"))


def lagged_effects(
    db: Session,
    registry: InstrumentRegistry,
    *,
    clinic_id: uuid.UUID,
    request: LaggedEffectsRequest,
    progress: analysis.Progress | None = None,
    patients: Select[Any] | None = None,
) -> LaggedEffectsResponse:
    variables = [_variable(registry, request.outcome, "outcome")]
    variables += [_variable(registry, name, f"predictors.{i}") for i, name in enumerate(request.predictors)]
    panel = load_panel(db, clinic_id=clinic_id, variables=variables, patients=patients)
    return analyse(panel, request, progress=progress)


def analyse(
    panel: pd.DataFrame, request: LaggedEffectsRequest, *, progress: analysis.Progress | None = None
) -> LaggedEffectsResponse:
    try:
        result = analysis.fit_lagged_effects(
            panel,
            outcome=request.outcome,
            predictors=request.predictors,
            lag=request.lag,
            method=request.method,
            progress=progress,
        )
    except analysis.InsufficientData as exc:
        raise InvalidInput(f"not enough data for the analysis: {exc}") from None
    return to_response(result)


def to_response(result: analysis.LaggedResult) -> LaggedEffectsResponse:
    return LaggedEffectsResponse.model_validate(asdict(result))
