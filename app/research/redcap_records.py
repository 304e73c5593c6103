"""The research export as REDCap records (``format=redcap``): the flat CSV the Data Import Tool reads against the
data dictionary of ``app.research.redcap`` (rules and sources there).

Rows come from the export's own query (``measurement_query``: current measurements of the clinic, the selected
instruments and period, months widened for a de-identified export), with the items read beside the scores. Per
patient: one row for the ``participant`` form, then one row per measurement, an instance of its instrument's
repeating form numbered 1, 2, … in time order. Every cell outside the row's form is empty. Streamed through a
session of its own, like the CSV export (``responses.stream_chunks``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from app.measurements.models import Measurement
from app.research.export import YIELD_PER, ExportSpec, measurement_query
from app.research.redcap import BASE_FORM, COMPLETE, UNANSWERED, Form, Source, forms, record_header
from app.research.schemas import ExportFormat, Layout, Level
from app.research.timeline import week_of
from app.research.variables import band_codes
from app.research.writers import CSV_FLUSH_ROWS, MEDIA_TYPES, csv_line, neutralised_row

Cell = str | int | float | None
FILE_NAME = "research-export-redcap.csv"


class _Layout:
    """Where each form's columns sit in the flat row, and how each value is read from a measurement."""

    def __init__(self, spec: ExportSpec) -> None:
        self.header = record_header(spec.definitions)
        self.index = {name: position for position, name in enumerate(self.header)}
        self.forms = {form.name: form for form in forms(spec.definitions)}
        self.bands = {
            (definition.id, score.key): band_codes(score)
            for definition in spec.definitions
            for score in definition.scores
        }

    def base_row(self, record_id: str) -> list[Cell]:
        row: list[Cell] = [None] * len(self.header)
        row[0] = record_id
        row[self.index[f"{BASE_FORM}_complete"]] = COMPLETE
        return row

    def instance_row(self, record_id: str, instance: int, measurement: Row[Any]) -> list[Cell]:
        form = self.forms[measurement.instrument_id]
        row: list[Cell] = [None] * len(self.header)
        row[0], row[1], row[2] = record_id, form.name, instance
        for field, source in form.fields:
            row[self.index[field.name]] = self.value(form, source, measurement)
        row[self.index[form.complete]] = COMPLETE
        return row

    def value(self, form: Form, source: Source, measurement: Row[Any]) -> Cell:
        if source.kind == "days":
            return int(measurement.days)
        if source.kind == "week":
            return week_of(measurement.days)
        if source.kind == "session":
            return int(measurement.session_number) if measurement.session_number is not None else None
        if source.kind == "version":
            return str(measurement.definition_version)
        if source.kind == "item":
            answer = (measurement.items or {}).get(source.key)
            return UNANSWERED.code if answer is None else str(answer)
        score: dict[str, Any] = (measurement.payload or {}).get(source.key) or {}
        if source.kind == "band":
            band = score.get("band")
            code = self.bands[(form.name, source.key)].get(band) if isinstance(band, str) else None
            return code
        if source.kind == "prorated":
            return (1 if score.get("prorated") else 0) if score.get("value") is not None else None
        return _score_value(score.get("value"), source)


def _score_value(value: Any, source: Source) -> Cell:
    """A stored score as its field's validation reads it. Anything else, which only an older definition can have
    left (text, a fraction in an integer score, a value outside the range), is not written: REDCap's import would
    refuse the file."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if source.minimum is not None and value < source.minimum:
        return None
    if source.maximum is not None and value > source.maximum:
        return None
    if float(value).is_integer():
        return int(value)
    return None if source.integer else float(value)


def record_rows(
    db: Session, spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str]
) -> tuple[list[str], Iterator[list[Cell]]]:
    """The header and the rows; ``spec`` must be a de-identified export's (record ids are pseudonyms)."""
    layout = _Layout(spec)
    scores_spec = replace(spec, layout=Layout.LONG, level=Level.SCORES)
    query = measurement_query(scores_spec).add_columns(Measurement.items.label("items"))
    measurements = db.connection().execute(query.execution_options(yield_per=YIELD_PER))

    def rows() -> Iterator[list[Cell]]:
        patient: str | None = None
        record_id = ""
        instances: dict[str, int] = {}
        for measurement in measurements:
            if measurement.patient_id != patient:
                patient = measurement.patient_id
                record_id = pseudonymise(uuid.UUID(str(patient)))
                instances = {}
                yield layout.base_row(record_id)
            instance = instances.get(measurement.instrument_id, 0) + 1
            instances[measurement.instrument_id] = instance
            yield layout.instance_row(record_id, instance, measurement)

    return layout.header, rows()


def csv_chunks(header: Sequence[str], rows: Iterator[list[Cell]]) -> Iterator[bytes]:
    """The records as CSV, every text cell neutralised against spreadsheet formulas (``writers.neutralise``)."""
    pending = [csv_line(header)]
    for row in rows:
        pending.append(csv_line(neutralised_row(row)))
        if len(pending) >= CSV_FLUSH_ROWS:
            yield "".join(pending).encode()
            pending = []
    yield "".join(pending).encode()


def stream(
    sessions: sessionmaker[Session], spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str]
) -> Iterator[bytes]:
    with sessions() as db, db.begin():
        header, rows = record_rows(db, spec, pseudonymise)
        yield from csv_chunks(header, rows)


def records_response(
    *, sessions: sessionmaker[Session], spec: ExportSpec, pseudonymise: Callable[[uuid.UUID], str]
) -> StreamingResponse:
    return StreamingResponse(
        stream(sessions, spec, pseudonymise),
        media_type=MEDIA_TYPES[ExportFormat.REDCAP],
        headers={"Content-Disposition": f'attachment; filename="{FILE_NAME}"'},
    )
