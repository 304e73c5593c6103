"""The codebook as a Frictionless Data Package (``datapackage.json``, Data Package v2 with Table Schema).

Resource ``export`` describes the exported file column by column (type, title, description, constraints, and value
labels as v2 ``categories``), with ``instrument``, ``scoreKey``, ``item`` and ``direction`` as extra properties.
Resource ``variables`` lists, inline, every score (or item) of the selected instruments with its range, direction,
bands or options: in the long layout these are the values of ``score_key`` (``item``), in the wide layout the
columns. Everything comes from the public instrument definitions, never from a clinic's private item wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.research.missing import Missing, missing_values
from app.research.schemas import ExportFormat, Layout, Level
from app.research.variables import (
    OCCASION_RULE,
    Column,
    band_codes,
    band_label,
    columns_for,
    public_item_text,
    score_title,
    variable_name,
)
from app.research.writers import MEDIA_TYPES
from app.scoring.definition import InstrumentDefinition, Score

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"

DEIDENTIFICATION = (
    "De-identified export: patient_id is a keyed pseudonym (HMAC-SHA256) specific to the research project; time is "
    "relative to each patient's first measurement (days_since_first, week); no calendar dates, external "
    "identifiers, free text (amendment reasons) or clinic-loaded item wording are included, and a period filter "
    "is widened to whole calendar months. Only the current version of each measurement is exported."
)
MISSING_DATA = (
    "Missing data are coded by reason (missingValues): "
    + "; ".join(f"{code.value} {code.label.lower()}" for code in Missing)
    + ". CSV writes the codes; SPSS declares them user-missing; Stata writes them as extended missing values "
    "(.a to .d); Parquet writes nulls and the wide layout's <instrument>_status columns tell why. Declined and "
    "missed occasions come from assessment schedules, where the clinic keeps them: in the long layout each is a row "
    "per score (or item) of its instrument, at the start of its window, coded with the reason."
)
IDENTIFIED = (
    "IDENTIFIED export (administrators only; every such export is recorded): internal and external patient ids "
    "and UTC times are included. Free text (amendment reasons) and clinic-loaded item wording are never exported."
)

SYNTHETIC = (
    "SYNTHETIC DATA: the clinic was made by the synthetic cohort generator; every patient and measurement in it is "
    "generated, none is real."
)
SYNTHETIC_PREFIX = "synthetic-"
"""Starts the file name of a synthetic clinic's export (and the codebook's resource path)."""


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def table_field(column: Column) -> dict[str, Any]:
    field: dict[str, Any] = {
        "name": column.name,
        "type": column.type,
        "title": column.title,
        "description": column.description,
    }
    constraints: dict[str, Any] = {}
    if column.required:
        constraints["required"] = True
    if column.minimum is not None:
        constraints["minimum"] = _number(column.minimum)
    if column.maximum is not None:
        constraints["maximum"] = _number(column.maximum)
    if column.enum:
        constraints["enum"] = list(column.enum)
    if constraints:
        field["constraints"] = constraints
    if column.value_labels:
        field["categories"] = [{"value": code, "label": label} for code, label in column.value_labels.items()]
    if column.coded:
        field["missingValues"] = missing_values()
    for key, value in (
        ("instrument", column.instrument),
        ("scoreKey", column.score_key),
        ("item", column.item),
        ("direction", column.direction),
    ):
        if value is not None:
            field[key] = value
    return field


def _bands(spec: Score) -> str | None:
    if not spec.bands:
        return None
    parts = []
    for band, following in zip(spec.bands, [*spec.bands[1:], None], strict=True):
        lower = f"{'≥' if band.lower_inclusive else '>'} {_number(band.lower)}"
        upper = (
            "" if following is None else f" and {'<' if following.lower_inclusive else '≤'} {_number(following.lower)}"
        )
        parts.append(f"{band_codes(spec)[band.label]} = {band_label(band.label)}: {lower}{upper}")
    return "; ".join(parts)


def score_variables(definitions: Sequence[InstrumentDefinition]) -> list[dict[str, Any]]:
    return [
        {
            "instrument": definition.id,
            "instrument_version": definition.version,
            "score_key": spec.key,
            "wide_name": variable_name(definition.id, spec.key),
            "label": score_title(definition, spec),
            "minimum": _number(spec.minimum),
            "maximum": _number(spec.maximum),
            "direction": spec.direction.value,
            "bands": _bands(spec),
            "note": spec.note,
        }
        for definition in definitions
        for spec in definition.scores
    ]


def item_variables(definitions: Sequence[InstrumentDefinition]) -> list[dict[str, Any]]:
    rows = []
    for definition in definitions:
        for item in definition.items:
            options = "; ".join(
                f"{option.value}={option.label}" if option.label else str(option.value)
                for option in definition.options_for(item)
            )
            rows.append(
                {
                    "instrument": definition.id,
                    "instrument_version": definition.version,
                    "item": int(item.number),
                    "wide_name": variable_name(definition.id, f"i{item.number}"),
                    "text": public_item_text(definition, item),
                    "options": options,
                    "scored": 1 if item.scored else 0,
                }
            )
    return rows


_SCORE_FIELDS = [
    {"name": "instrument", "type": "string"},
    {"name": "instrument_version", "type": "string"},
    {"name": "score_key", "type": "string"},
    {"name": "wide_name", "type": "string", "description": "Column name in the wide layout."},
    {"name": "label", "type": "string"},
    {"name": "minimum", "type": "number"},
    {"name": "maximum", "type": "number"},
    {"name": "direction", "type": "string", "constraints": {"enum": ["lower_is_better", "higher_is_better"]}},
    {"name": "bands", "type": "string"},
    {"name": "note", "type": "string"},
]
_ITEM_FIELDS = [
    {"name": "instrument", "type": "string"},
    {"name": "instrument_version", "type": "string"},
    {"name": "item", "type": "integer"},
    {"name": "wide_name", "type": "string", "description": "Column name in the wide layout."},
    {"name": "text", "type": "string", "description": "Published wording, only where the licence allows shipping it."},
    {"name": "options", "type": "string", "description": "Allowed answers as value=label."},
    {"name": "scored", "type": "integer", "categories": [{"value": 0, "label": "no"}, {"value": 1, "label": "yes"}]},
]


def datapackage(
    *,
    layout: Layout,
    level: Level,
    export_format: ExportFormat,
    definitions: Sequence[InstrumentDefinition],
    identified: bool = False,
    synthetic: bool = False,
) -> dict[str, Any]:
    """``synthetic``: the clinic is a synthetic one; the package says so (``synthetic``, the description and the
    file's name)."""
    columns = columns_for(layout, level, definitions, identified=identified)
    schema: dict[str, Any] = {"fields": [table_field(column) for column in columns], "missingValues": missing_values()}
    if layout is Layout.WIDE:
        schema["primaryKey"] = ["patient_id", "week", "occasion"]
    name = f"{SYNTHETIC_PREFIX if synthetic else ''}research-export-{layout.value}-{level.value}"
    variables = score_variables(definitions) if level is Level.SCORES else item_variables(definitions)
    return {
        "$schema": PROFILE,
        "name": "compassion-outcomes-research-export",
        "title": f"Compassion Outcomes research export ({layout.value} layout, {level.value})",
        "description": (f"{SYNTHETIC} " if synthetic else "")
        + f"{IDENTIFIED if identified else DEIDENTIFICATION} {MISSING_DATA}"
        + (f" {OCCASION_RULE}" if layout is Layout.WIDE else ""),
        "synthetic": synthetic,
        "resources": [
            {
                "name": "export",
                "path": f"{name}.{export_format.value}",
                "format": export_format.value,
                "mediatype": MEDIA_TYPES[export_format].split(";")[0],
                "encoding": "utf-8",
                "type": "table",
                "schema": schema,
            },
            {
                "name": "variables",
                "title": "Scores of the exported instruments" if level is Level.SCORES else "Items of the instruments",
                "type": "table",
                "data": variables,
                "schema": {"fields": _SCORE_FIELDS if level is Level.SCORES else _ITEM_FIELDS, "missingValues": [""]},
            },
        ],
    }
