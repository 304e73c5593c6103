"""Licensed item text: a clinic loads the wording of an instrument for its own use (as CamCOPS's site strings).

The text is checked against the definition (every item and option must exist), stored per clinic, and merged into
that clinic's view of the definition. Scoring never reads it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import FieldError, InvalidInput, NotFound
from app.instruments.models import ClinicInstrumentText
from app.instruments.schemas import InstrumentTextLoad, InstrumentTextRead
from app.scoring.definition import InstrumentDefinition


def load(
    db: Session,
    *,
    clinic_id: uuid.UUID,
    key_id: uuid.UUID,
    definition: InstrumentDefinition,
    data: InstrumentTextLoad,
) -> ClinicInstrumentText:
    _check(definition, data)
    row = _find(db, clinic_id, definition.id)
    if row is None:
        row = ClinicInstrumentText(clinic_id=clinic_id, instrument_id=definition.id)
        db.add(row)
    row.licence_note = data.licence_note
    row.instructions = data.instructions
    row.item_text = dict(data.items)
    row.option_labels = {name: dict(labels) for name, labels in data.option_labels.items()}
    row.loaded_by_key_id = key_id
    row.updated_at = utcnow()
    db.flush()
    return row


def get(db: Session, *, clinic_id: uuid.UUID, instrument_id: str) -> ClinicInstrumentText:
    row = _find(db, clinic_id, instrument_id)
    if row is None:
        raise NotFound(f"this clinic has loaded no item text for {instrument_id}")
    return row


def delete(db: Session, *, clinic_id: uuid.UUID, instrument_id: str) -> None:
    db.delete(get(db, clinic_id=clinic_id, instrument_id=instrument_id))
    db.flush()


def to_read(row: ClinicInstrumentText) -> InstrumentTextRead:
    return InstrumentTextRead(
        instrument=row.instrument_id,
        licence_note=row.licence_note,
        instructions=row.instructions,
        items=row.item_text,
        option_labels=row.option_labels,
        updated_at=row.updated_at,
    )


def clinic_view(db: Session, *, clinic_id: uuid.UUID, definition: InstrumentDefinition) -> dict[str, Any]:
    """The definition as this clinic sees it: its own licensed wording merged in, marked by ``text_source``."""
    view = definition.model_dump(mode="json")
    row = _find(db, clinic_id, definition.id)
    for item in view["items"]:
        item["text_source"] = "definition" if item["text"] is not None else None
    for options in view["option_sets"].values():
        for option in options:
            option["label_source"] = "definition" if option["label"] is not None else None
    view["clinic_text"] = None
    if row is None:
        return view
    if row.instructions is not None:
        view["instructions"] = row.instructions
    for item in view["items"]:
        if item["number"] in row.item_text:
            item["text"] = row.item_text[item["number"]]
            item["text_source"] = "clinic"
    for name, labels in row.option_labels.items():
        for option in view["option_sets"][name]:
            if str(option["value"]) in labels:
                option["label"] = labels[str(option["value"])]
                option["label_source"] = "clinic"
    view["clinic_text"] = {"licence_note": row.licence_note, "updated_at": row.updated_at.isoformat()}
    return view


def _find(db: Session, clinic_id: uuid.UUID, instrument_id: str) -> ClinicInstrumentText | None:
    return db.scalar(
        select(ClinicInstrumentText).where(
            ClinicInstrumentText.clinic_id == clinic_id, ClinicInstrumentText.instrument_id == instrument_id
        )
    )


def _check(definition: InstrumentDefinition, data: InstrumentTextLoad) -> None:
    numbers = [item.number for item in definition.items]
    errors = [
        FieldError(field=f"items.{number}", message=f"{definition.short_name} has no item {number!r}", value=number)
        for number in data.items
        if number not in numbers
    ]
    for name, labels in data.option_labels.items():
        options = definition.option_sets.get(name)
        if options is None:
            errors.append(
                FieldError(
                    field=f"option_labels.{name}",
                    message=f"unknown option set {name!r}",
                    value=name,
                    allowed=sorted(definition.option_sets),
                )
            )
            continue
        values = [str(option.value) for option in options]
        errors.extend(
            FieldError(
                field=f"option_labels.{name}.{value}",
                message=f"option set {name!r} has no value {value!r}",
                value=value,
                allowed=values,
            )
            for value in labels
            if value not in values
        )
    if errors:
        raise InvalidInput(f"the text does not fit {definition.short_name}; nothing was stored", errors=errors)
