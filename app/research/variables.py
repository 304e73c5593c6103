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

from app.research.missing import STATUS_LABELS
from app.research.missing import description as missing_description
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
    coded: bool = False
    """Its missing cells carry a missing-data code (``app.research.missing``)."""


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


def band_label(band: str) -> str:
    """A band's label text, the same in every layout and format (value labels and text columns)."""
    return band.replace("_", " ")


def band_labels(spec: Score) -> dict[int, str]:
    return {code: band_label(label) for label, code in band_codes(spec).items()}


def shared_band_labels(definitions: Sequence[InstrumentDefinition]) -> dict[int, str]:
    """The band value labels of the long layout's ``band`` column: one set only if every banded score shares it."""
    sets = [band_labels(spec) for definition in definitions for spec in definition.scores if spec.bands]
    return sets[0] if sets and all(labels == sets[0] for labels in sets) else {}


def option_labels(definition: InstrumentDefinition, item: Item) -> dict[int, str]:
    return {
        option.value: option.label
        for option in definition.options_for(item)
        if isinstance(option.value, int) and option.label is not None
    }


def item_is_integer(definition: InstrumentDefinition, item: Item) -> bool:
    return all(isinstance(option.value, int) for option in definition.options_for(item))


def sentence(text: str) -> str:
    """The text as a sentence: ending in a full stop unless it already ends in punctuation."""
    stripped = text.rstrip()
    return stripped if stripped.endswith((".", "?", "!", "…")) else f"{stripped}."


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


MISSING = missing_description()

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
            Column(
                "measured_at",
                "datetime",
                "When the patient answered (UTC)",
                "ISO 8601, UTC; for a declined or missed occasion, the start of its window.",
                required=True,
            )
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
        Column(
            "value",
            "number",
            "Score value",
            "The score; the unanswered code when too many of its items were unanswered to score it, the declined or "
            f"missed code in a declined or missed occasion's row. {MISSING}",
            coded=True,
        ),
        Column(
            "band",
            "integer",
            "Severity band",
            "Band of the value, coded 1, 2, … in increasing order of the score, as in the wide layout (each score's "
            "codes are listed in the variables resource); empty where the instrument defines no bands. "
            f"{MISSING}",
            minimum=1,
            value_labels=shared_band_labels(definitions),
            coded=True,
        ),
        Column(
            "band_label",
            "string",
            "Severity band (label)",
            "Label of the band code, for formats without value labels; empty when the band is missing.",
        ),
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
            "answer",
            "string",
            "Answer as given",
            f"The option given (e.g. 2, or BDI-II's '2a'); the unanswered code if unanswered. {MISSING}",
            coded=True,
        ),
        Column(
            "item_score",
            "integer",
            "Item score",
            "Numeric score of the answer before any reversal; empty when the answer has none, the unanswered code "
            f"if unanswered. {MISSING}",
            coded=True,
        ),
    ]


OCCASION_RULE = (
    "One row per occasion of a patient-week: occasion 1 holds the first answer (or declined or missed occasion) of "
    "each instrument in that week, occasion 2 the second, and so on, in time order; no measurement is ever left out. "
    "An instrument with fewer occasions that week is coded not administered in the later rows."
)


def wide_key_columns(identified: bool) -> list[Column]:
    return [
        *identity_columns(identified),
        Column("week", "integer", "Week since first measurement", WEEK_DESCRIPTION, minimum=0, required=True),
        Column("occasion", "integer", "Occasion within the week", f"{OCCASION_RULE}", minimum=1, required=True),
        Column(
            "session_number",
            "integer",
            "Therapy session number",
            "Highest session number among the occasion's measurements; empty when none was attached to a session.",
            minimum=1,
        ),
    ]


def status_column(definition: InstrumentDefinition) -> Column:
    return Column(
        variable_name(definition.id, "status"),
        "integer",
        f"{definition.short_name}: occasion status",
        "Whether the instrument was answered in this occasion (1), or why not: the missing-data code its other "
        "columns carry in this row.",
        instrument=definition.id,
        value_labels=dict(STATUS_LABELS),
        required=True,
    )


SAME_WEEK = "A second answer in the same week is in the next occasion's row."


def wide_score_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    columns = wide_key_columns(identified)
    for definition in definitions:
        columns.append(status_column(definition))
        for spec in definition.scores:
            columns.append(
                Column(
                    variable_name(definition.id, spec.key),
                    "number",
                    score_title(definition, spec),
                    f"{spec.label}; {spec.direction.value.replace('_', ' ')}. {SAME_WEEK} {MISSING}",
                    instrument=definition.id,
                    score_key=spec.key,
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    direction=spec.direction.value,
                    coded=True,
                )
            )
            if spec.bands:
                title = f"{score_title(definition, spec)}: band"
                columns.append(
                    Column(
                        variable_name(definition.id, spec.key, "band"),
                        "integer",
                        title,
                        f"Band of the score, coded 1, 2, … in increasing order of the score. {MISSING}",
                        instrument=definition.id,
                        score_key=spec.key,
                        minimum=1,
                        maximum=len(spec.bands),
                        value_labels=band_labels(spec),
                        coded=True,
                    )
                )
                columns.append(
                    Column(
                        variable_name(definition.id, spec.key, "band_label"),
                        "string",
                        f"{title} (label)",
                        "Label of the band code, for formats without value labels; empty when the band is missing.",
                        instrument=definition.id,
                        score_key=spec.key,
                    )
                )
    return columns


def wide_item_columns(definitions: Sequence[InstrumentDefinition], *, identified: bool) -> list[Column]:
    columns = wide_key_columns(identified)
    for definition in definitions:
        columns.append(status_column(definition))
        for item in definition.items:
            text = public_item_text(definition, item)
            values = [option.value for option in definition.options_for(item)]
            integer = item_is_integer(definition, item)
            columns.append(
                Column(
                    variable_name(definition.id, f"i{item.number}"),
                    "integer" if integer else "string",
                    f"{definition.short_name} item {item.number}",
                    sentence(text or "Item wording is not shipped (licence).")
                    + ("" if item.scored else " Not scored.")
                    + f" {SAME_WEEK} {MISSING}",
                    instrument=definition.id,
                    item=item.number,
                    coded=True,
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
