"""Which change parameters apply: the clinic's own (set by its admin, with a citation) or the shipped defaults."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clinical.change import (
    RCI_CUTOFF,
    Assessment,
    CutoffType,
    Method,
    Parameters,
    cutoff_value,
    sign,
    standard_error_of_difference,
    standard_error_of_measurement,
)
from app.clinical.defaults import DEFAULTS, JACOBSON_TRUAX_1991
from app.clinical.models import ClinicChangeParameters
from app.clinical.schemas import ChangeParametersSet, EvidenceRead, ParametersRead
from app.core.db import utcnow
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.scoring.definition import InstrumentDefinition, Score

NUMERIC_FIELDS = (
    "reliability",
    "clinical_mean",
    "clinical_sd",
    "functional_mean",
    "functional_sd",
    "caseness_cutoff",
    "minimum_change",
    "response_reduction",
    "remission_below",
)
JACOBSON_TRUAX_SE = "jacobson_truax: SE = SD_clin * sqrt(1 - reliability); S_diff = sqrt(2) * SE"


def resolve(
    db: Session, *, clinic_id: uuid.UUID, instrument: str, score: str, method: Method
) -> tuple[Parameters | None, datetime | None]:
    """The clinic's parameters if it set any for this score and method, else the shipped defaults, else none."""
    row = _find(db, clinic_id=clinic_id, instrument=instrument, score=score, method=method)
    if row is not None:
        return from_row(row), row.updated_at
    return DEFAULTS.get((instrument, score, method)), None


def from_row(row: ClinicChangeParameters) -> Parameters:
    values = {name: getattr(row, name) for name in NUMERIC_FIELDS}
    cited = [name for name, value in values.items() if value is not None]
    if row.cutoff_type is not None:
        cited.append("cutoff_type")
    return Parameters(
        method=Method(row.method),
        source="clinic",
        cutoff_type=CutoffType(row.cutoff_type) if row.cutoff_type else None,
        citations=dict.fromkeys(cited, row.citation),
        **values,
    )


def to_read(
    parameters: Parameters,
    *,
    instrument: str,
    score: Score,
    updated_at: datetime | None = None,
    assessment: Assessment | None = None,
) -> ParametersRead:
    p = parameters
    se = s_diff = None
    if p.method is Method.JACOBSON_TRUAX and p.reliability is not None and p.clinical_sd is not None:
        se = standard_error_of_measurement(p.clinical_sd, p.reliability)
        s_diff = standard_error_of_difference(se)
    jacobson_truax = p.method is Method.JACOBSON_TRUAX
    citations = dict(p.citations)
    if jacobson_truax:
        citations.setdefault("method", JACOBSON_TRUAX_1991)
    return ParametersRead(
        instrument=instrument,
        score=score.key,
        method=p.method,
        source=p.source,
        direction=score.direction.value,
        reliability=p.reliability,
        clinical_mean=p.clinical_mean,
        clinical_sd=p.clinical_sd,
        functional_mean=p.functional_mean,
        functional_sd=p.functional_sd,
        cutoff_type=p.cutoff_type,
        caseness_cutoff=p.caseness_cutoff,
        cutoff=assessment.cutoff if assessment else cutoff_value(p, sign(score.direction.value)),
        minimum_change=p.minimum_change,
        rci_cutoff=RCI_CUTOFF if jacobson_truax else None,
        standard_error=JACOBSON_TRUAX_SE if jacobson_truax else None,
        standard_error_of_measurement=se,
        standard_error_of_difference=s_diff,
        response_reduction=p.response_reduction,
        remission_below=p.remission_below,
        citations=citations,
        evidence={
            name: EvidenceRead(
                sources=len(evidence.sources),
                source_names=list(evidence.sources),
                confirmed=evidence.confirmed,
                reliability_kind=evidence.reliability_kind,
                note=evidence.note,
            )
            for name, evidence in p.evidence.items()
        },
        updated_at=updated_at,
    )


def effective(db: Session, *, clinic_id: uuid.UUID, definitions: list[InstrumentDefinition]) -> list[ParametersRead]:
    """Every parameter set in force for the clinic: its own, and the shipped defaults it has not replaced."""
    own = {
        (row.instrument_id, row.score_key, row.method): row
        for row in db.scalars(select(ClinicChangeParameters).where(ClinicChangeParameters.clinic_id == clinic_id))
    }
    result: list[ParametersRead] = []
    for definition in definitions:
        for spec in definition.scores:
            for method in Method:
                row = own.get((definition.id, spec.key, method.value))
                if row is not None:
                    result.append(
                        to_read(from_row(row), instrument=definition.id, score=spec, updated_at=row.updated_at)
                    )
                elif (default := DEFAULTS.get((definition.id, spec.key, method))) is not None:
                    result.append(to_read(default, instrument=definition.id, score=spec))
    return result


def set_for_clinic(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    key_id: uuid.UUID,
    definition: InstrumentDefinition,
    score: Score,
    method: Method,
    data: ChangeParametersSet,
) -> ClinicChangeParameters:
    """Create or replace the clinic's parameters for one score and method; invalid combinations store nothing."""
    _validate(data, score=score, method=method)
    row = _find(db, clinic_id=clinic_id, instrument=definition.id, score=score.key, method=method)
    if row is None:
        row = ClinicChangeParameters(
            clinic_id=clinic_id, instrument_id=definition.id, score_key=score.key, method=method.value
        )
        db.add(row)
    for name in NUMERIC_FIELDS:
        setattr(row, name, getattr(data, name))
    row.cutoff_type = data.cutoff_type.value if data.cutoff_type else None
    row.citation = data.citation
    row.set_by_key_id = key_id
    row.updated_at = utcnow()
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise Conflict("these parameters were set concurrently; read them again and retry") from None
    return row


def delete_for_clinic(db: Session, *, clinic_id: uuid.UUID, instrument: str, score: str, method: Method) -> None:
    row = _find(db, clinic_id=clinic_id, instrument=instrument, score=score, method=method)
    if row is None:
        raise NotFound(f"the clinic has set no {method.value} parameters for {instrument} {score}")
    db.delete(row)
    db.flush()


def _validate(data: ChangeParametersSet, *, score: Score, method: Method) -> None:
    errors: list[FieldError] = []
    required = ("reliability", "clinical_sd") if method is Method.JACOBSON_TRUAX else ("minimum_change",)
    unused = ("minimum_change",) if method is Method.JACOBSON_TRUAX else ("reliability",)
    errors += [FieldError(name, f"{method.value} needs {name}") for name in required if getattr(data, name) is None]
    errors += [
        FieldError(name, f"{method.value} does not use {name}", getattr(data, name))
        for name in unused
        if getattr(data, name) is not None
    ]
    cutoff_needs = {
        None: (),
        CutoffType.CASENESS: ("caseness_cutoff",),
        CutoffType.A: ("clinical_mean", "clinical_sd"),
        CutoffType.B: ("functional_mean", "functional_sd"),
        CutoffType.C: ("clinical_mean", "clinical_sd", "functional_mean", "functional_sd"),
    }[data.cutoff_type]
    errors += [
        FieldError(name, f"cut-off {data.cutoff_type} needs {name}")
        for name in cutoff_needs
        if getattr(data, name) is None
    ]
    if data.caseness_cutoff is not None:
        if data.cutoff_type is not CutoffType.CASENESS:
            errors.append(FieldError("caseness_cutoff", "set cutoff_type to caseness to use it", data.caseness_cutoff))
        elif not score.minimum <= data.caseness_cutoff <= score.maximum:
            errors.append(
                FieldError(
                    "caseness_cutoff",
                    f"outside the score's range {score.minimum:g}–{score.maximum:g}",
                    data.caseness_cutoff,
                )
            )
    if score.direction.value == "higher_is_better":
        errors += [
            FieldError(name, "defined for lower-is-better scores only", getattr(data, name))
            for name in ("response_reduction", "remission_below")
            if getattr(data, name) is not None
        ]
    if errors:
        raise InvalidInput(f"{len(errors)} invalid parameter(s); nothing was stored", errors=errors)


def _find(
    db: Session, *, clinic_id: uuid.UUID, instrument: str, score: str, method: Method
) -> ClinicChangeParameters | None:
    return db.scalar(
        select(ClinicChangeParameters).where(
            ClinicChangeParameters.clinic_id == clinic_id,
            ClinicChangeParameters.instrument_id == instrument,
            ClinicChangeParameters.score_key == score,
            ClinicChangeParameters.method == method.value,
        )
    )
