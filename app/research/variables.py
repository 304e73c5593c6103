"""The in-code codebook: every column of every export layout, with its meaning, range, direction and value labels.

One list of ``Column`` feeds the CSV header, the Parquet schema, the SPSS/Stata variable and value labels and the
``datapackage.json``, so every format carries the same names and labels. Names follow ``^[a-z][a-z0-9_]*$`` and are
at most 32 characters (Stata's limit); a longer ``<instrument>_<score>`` name is cut and given a short hash suffix.
Only public definition text is used (option labels, and item wording where the licence allows shipping it): never a
clinic's privately loaded wording.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.research.schemas import Layout, Level
from app.scoring.definition import InstrumentDefinition, Item, Score

ColumnType = Literal["string", "integer", "number", "datetime"]
Value = str | int | float | datetime | None
"""One cell of an export row."""
MAX_NAME = 32
YES_NO = {0: "no", 1: "yes"}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    title: str
    description: str
    instrument: str | None = None
    score_key: str | None = None
    item: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    direction: str | None = None
    value_labels: dict[int, str] = field(default_factory=dict)
    enum: tuple[str, ...] = ()
    required: bool = False


def variable_name(*parts: str) -> str:
    name = "_".join(parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:4]
    return f"{name[: MAX_NAME - 5]}_{digest}"


def score_title(definition: InstrumentDefinition, spec: Score) -> str:
    return spec.label if definition.short_name in spec.label else f"{definition.short_name}: {spec.label}"


def band_codes(spec: Score) -> dict[str, int]:
    """Bands coded 1…k in the definition's (increasing) order, for formats whose value labels need integers."""
    return {band.label: position for position, band in enumerate(spec.bands, start=1)}


def option_labels(definition: InstrumentDefinition, item: Item) -> dict[int, str]:
    return {
        option.value: option.label
        for option in definition.options_for(item)
        if isinstance(option.value, int) and option.label is not None
    }


def item_is_integer(definition: InstrumentDefinition, item: Item) -> bool:
    return all(isinstance(option.value, int) for option in definition.options_for(item))


def public_item_text(definition: InstrumentDefinition, item: Item) -> str | None:
    return item.text if definition.licence.text_shippable else None


PSEUDONYM_DESCRIPTION = (
    "Pseudonymous patient id: the first 16 base32 characters of HMAC-SHA256 over the clinic and patient ids, keyed "
    "by the export project's key. Stable within a project, different between projects, irreversible without the "
    "server's secret."
)
WEEK_DESCRIPTION = (
    "Calendar week since the patient's first measurement of any instrument: days_since_first // 7 (week 0 holds the "
    "first measurement)."
)
DAYS_DESCRIPTION = (
    "Days from the UTC calendar date of the patient's first measurement (any instrument, whatever the export's "
    "filters) to the UTC calendar date of this one. No calendar dates are exported."
)


def identity_columns(identified: bool) -> list[Column]:
    if not identified:
        return [Column("patient_id", "string", "Pseudonymous patient id", PSEUDONYM_DESCRIPTION, required=True)]
    return [
        Column(
            "patient_id",
            "string",
            "Internal patient id (identified export)",
            "The service's patient UUID.",
            required=True,
        ),
        Column("external_id", "string", "Clinic's external patient id", "The clinic's own identifier, if any."),
    ]


SESSION = Column(
    "session_number",
    "integer",
    "Therapy session number",
    "Number of the therapy session the measurement was attached to; empty when none.",
    minimum=1,
)


def _long_time_columns(identified: bool) -> list[Column]:
    columns = [
        SESSION,
        Column("week", "integer", "Week since first measurement", WEEK_DESCRIPTION, minimum=0, required=True),
        Column(
            "days_since_first", "integer", "Days since first measurement", DAYS_DESCRIPTION, minimum=0, required=True
        ),
    ]
    if identified:
        columns.append(
            Column("measured_at", "datetime", "When the patient answered (UTC)", "ISO 8601, UTC.", required=True)
        )
    return columns


def _instrument_columns(definitions: Sequence[InstrumentDefinition]) -> list[Column]:
    ids = tuple(definition.id for definition in definitions)
    return [
        Column(
            "instrument", "string", "Instrument", "Instrument id (see the variables resource).", enum=ids, required=True
        ),
        Column(
            "instrument_version",
            "string",
            "Definition version",
            "Version of the instrument definition the measurement was scored under.",
            required=True,
        ),
    ]


def long_score_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    return [
        *identity_columns(identified),
        *_long_time_columns(identified),
        *_instrument_columns(definitions),
        Column(
            "score_key",
            "string",
            "Score key",
            "Which score of the instrument (see the variables resource).",
            required=True,
        ),
        Column("value", "number", "Score value", "Empty when too many of the score's items were missing."),
        Column("band", "string", "Severity band", "Band label of the value, where the instrument defines bands."),
        Column(
            "prorated",
            "integer",
            "Prorated",
            "1 when the value was prorated over missing items (sum × items / answered).",
            value_labels=YES_NO,
            minimum=0,
            maximum=1,
        ),
        Column("flags", "string", "Risk flags", "Risk flags raised by the measurement, separated by ';'."),
    ]


def long_item_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    return [
        *identity_columns(identified),
        *_long_time_columns(identified),
        *_instrument_columns(definitions),
        Column("item", "integer", "Item number", "Published item number.", minimum=1, required=True),
        Column(
            "answer", "string", "Answer as given", "The option given (e.g. 2, or BDI-II's '2a'); empty if unanswered."
        ),
        Column("item_score", "integer", "Item score", "Numeric score of the answer before any reversal."),
    ]


def wide_key_columns(identified: bool) -> list[Column]:
    return [
        *identity_columns(identified),
        Column("week", "integer", "Week since first measurement", WEEK_DESCRIPTION, minimum=0, required=True),
        Column(
            "session_number",
            "integer",
            "Therapy session number",
            "Highest session number among the week's measurements; empty when none was attached to a session.",
            minimum=1,
        ),
    ]


SAME_WEEK = "When an instrument was answered more than once in a week, the last answer of the week is used."


def wide_score_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    columns = wide_key_columns(identified)
    for definition in definitions:
        for spec in definition.scores:
            columns.append(
                Column(
                    variable_name(definition.id, spec.key),
                    "number",
                    score_title(definition, spec),
                    f"{spec.label}; {spec.direction.value.replace('_', ' ')}. {SAME_WEEK}",
                    instrument=definition.id,
                    score_key=spec.key,
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    direction=spec.direction.value,
                )
            )
            if spec.bands:
                columns.append(
                    Column(
                        variable_name(definition.id, spec.key, "band"),
                        "integer",
                        f"{score_title(definition, spec)}: band"[:80],
                        "Band of the score, coded in increasing order of the score.",
                        instrument=definition.id,
                        score_key=spec.key,
                        minimum=1,
                        maximum=len(spec.bands),
                        value_labels={code: label.replace("_", " ") for label, code in band_codes(spec).items()},
                    )
                )
    return columns


def wide_item_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    columns = wide_key_columns(identified)
    for definition in definitions:
        for item in definition.items:
            text = public_item_text(definition, item)
            values = [option.value for option in definition.options_for(item)]
            integer = item_is_integer(definition, item)
            columns.append(
                Column(
                    variable_name(definition.id, f"i{item.number}"),
                    "integer" if integer else "string",
                    f"{definition.short_name} item {item.number}",
                    (text or "Item wording is not shipped (licence).")
                    + ("" if item.scored else " Not scored.")
                    + f" {SAME_WEEK}",
                    instrument=definition.id,
                    item=item.number,
                    minimum=min(int(v) for v in values) if integer else None,
                    maximum=max(int(v) for v in values) if integer else None,
                    value_labels=option_labels(definition, item),
                    enum=() if integer else tuple(str(v) for v in values),
                )
            )
    return columns


def columns_for(
    layout: Layout, level: Level, definitions: Sequence[InstrumentDefinition], *, identified: bool
) -> list[Column]:
    if layout is Layout.LONG:
        if level is Level.SCORES:
            return long_score_columns(definitions, identified=identified)
        return long_item_columns(definitions, identified=identified)
    if level is Level.SCORES:
        return wide_score_columns(definitions, identified=identified)
    return wide_item_columns(definitions, identified=identified)
