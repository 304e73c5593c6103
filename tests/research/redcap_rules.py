"""A checker of REDCap data dictionaries and record files, written from REDCap's documented column rules.

Independent of ``app.research.redcap``: every rule is restated here from its source, not imported.

- Headers, 18 in this order: REDCap KB RC-FD-08 "Data Dictionary: Column Reference & Advanced Techniques"
  (https://bdeveer.github.io/REDCap_KB_RAG/RC-FD-08_Data-Dictionary-Column-Reference-and-Advanced-Techniques/);
  ``redcapdd::get_dd_cols`` (https://rdrr.io/github/Sage-Bionetworks/redcapdd/man/get_dd_cols.html).
- Field names and form names ``^[a-z][a-z0-9_]*$``, field names unique; a form's fields contiguous; the first field
  the record id, of type ``text``: linkml-redcap (https://linkml.io/linkml-redcap/reference/data_dictionary/:
  ``variable_field_name``, ``form_name``, ``DataDictionary``). The length limit of 100 characters was found only in
  an unattributed excerpt; it is checked as the upper bound nobody contradicts.
- Field types: linkml-redcap ``FieldType``; text validation types: linkml-redcap ``TextValidationType`` (the list
  below is its documented list as far as the page showed it: dates, datetimes, times, integer, number and the
  number_Ndp variants with dot and comma decimals; types it lists beyond those were not seen and are not accepted).
- Choices ``code, label | code, label``, codes ``^[a-z0-9_]*$`` (we also accept a leading minus, as REDCap's own
  examples use negative codes): linkml-redcap ``choices_calculations_slider_labels``, ``raw_value``.
- ``yesno`` stores 1 / 0: linkml-redcap ``record`` ``YesNo``.
- Records: the record id first; ``redcap_repeat_instrument`` / ``redcap_repeat_instance`` for repeating instruments;
  ``<form>_complete`` per form (CCTS "Data Import Tool", https://ccts-bsc.netlify.app/redcap/data-import-tool/),
  valued 0, 1 or 2 (linkml-redcap ``FormCompleteStatus``; REDCapR ``constant``); a flat row leaves every field
  outside its instrument empty (linkml-redcap ``record``, FlatRecord).
- Missing-data codes: letters, digits, dots, dashes, underscores; stored as the field's literal value (University
  of Wisconsin KB 108107 "REDCap: Missing Data Codes"; Utah CTSI "Missing Data Codes").
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

HEADERS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 100
CHOICE_CODE = re.compile(r"^-?[a-z0-9_]+$")
MISSING_CODE = re.compile(r"^[A-Za-z0-9._-]+$")
FIELD_TYPES = frozenset(
    {
        "text",
        "notes",
        "dropdown",
        "radio",
        "checkbox",
        "yesno",
        "truefalse",
        "calc",
        "file",
        "slider",
        "descriptive",
        "sql",
    }
)
CHOICE_TYPES = frozenset({"dropdown", "radio", "checkbox"})
VALIDATION_TYPES = frozenset(
    {
        "date_ymd",
        "date_mdy",
        "date_dmy",
        "datetime_ymd",
        "datetime_mdy",
        "datetime_dmy",
        "datetime_seconds_ymd",
        "datetime_seconds_mdy",
        "datetime_seconds_dmy",
        "time",
        "time_mm_ss",
        "integer",
        "number",
        "number_1dp",
        "number_2dp",
        "number_3dp",
        "number_4dp",
        "number_comma_decimal",
        "number_1dp_comma_decimal",
        "number_2dp_comma_decimal",
    }
)
NUMERIC_VALIDATION = frozenset({"integer", "number"})
REPEAT_COLUMNS = ("redcap_repeat_instrument", "redcap_repeat_instance")
YES_OR_EMPTY = frozenset({"", "y"})


@dataclass(frozen=True)
class DictionaryField:
    name: str
    form: str
    type: str
    choices: dict[str, str]
    validation: str
    minimum: float | None
    maximum: float | None


def _number(text: str) -> float | None:
    return float(text) if text else None


def parse_choices(text: str) -> dict[str, str] | str:
    """The choices as {code: label}, or the reason they do not parse."""
    parsed: dict[str, str] = {}
    for part in text.split("|"):
        code, comma, label = part.strip().partition(",")
        if not comma or not label.strip():
            return f"choice {part.strip()!r} is not 'code, label'"
        code = code.strip()
        if not CHOICE_CODE.match(code):
            return f"choice code {code!r} is not lower-case letters, digits or underscores"
        if code in parsed:
            return f"choice code {code!r} is repeated"
        parsed[code] = label.strip()
    return parsed


def check_dictionary(content: str) -> tuple[list[str], list[DictionaryField]]:
    """(problems, fields): every broken rule, and the fields read."""
    rows = list(csv.reader(io.StringIO(content, newline="")))
    problems: list[str] = []
    if not rows or rows[0] != HEADERS:
        return [f"headers are not REDCap's 18 columns in order: {rows[0] if rows else None}"], []
    fields: list[DictionaryField] = []
    seen_forms: list[str] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADERS):
            problems.append(f"line {number}: {len(row)} cells")
            continue
        name, form, _, kind, label, choices, _, validation, low, high = row[:10]
        where = f"line {number} ({name})"
        if not NAME.match(name) or len(name) > MAX_NAME:
            problems.append(f"{where}: field name breaks ^[a-z][a-z0-9_]*$ or {MAX_NAME} characters")
        if not NAME.match(form):
            problems.append(f"{where}: form name {form!r} breaks ^[a-z][a-z0-9_]*$")
        if kind not in FIELD_TYPES:
            problems.append(f"{where}: field type {kind!r} is not one of REDCap's")
        if not label:
            problems.append(f"{where}: no field label")
        if row[10] not in YES_OR_EMPTY or row[12] not in YES_OR_EMPTY or row[16] not in YES_OR_EMPTY:
            problems.append(f"{where}: Identifier?, Required Field? and Matrix Ranking? take 'y' or nothing")
        if seen_forms and seen_forms[-1] != form and form in seen_forms:
            problems.append(f"{where}: form {form!r} is not contiguous")
        if not seen_forms or seen_forms[-1] != form:
            seen_forms.append(form)
        parsed: dict[str, str] = {}
        if kind in CHOICE_TYPES:
            result = parse_choices(choices)
            if isinstance(result, str):
                problems.append(f"{where}: {result}")
            else:
                parsed = result
        elif kind == "calc" and not choices:
            problems.append(f"{where}: a calc field needs its calculation")
        elif kind not in ("calc", "slider", "text") and choices:
            problems.append(f"{where}: a {kind} field takes no choices")
        if validation and (kind != "text" or validation not in VALIDATION_TYPES):
            problems.append(f"{where}: validation {validation!r} is not a text field's validation type")
        if (low or high) and validation not in NUMERIC_VALIDATION:
            problems.append(f"{where}: min/max checked here only with integer or number validation")
        try:
            minimum, maximum = _number(low), _number(high)
        except ValueError:
            problems.append(f"{where}: min/max are not numbers")
            continue
        if validation == "integer" and any(v is not None and not v.is_integer() for v in (minimum, maximum)):
            problems.append(f"{where}: an integer field's bounds must be integers")
        if minimum is not None and maximum is not None and minimum > maximum:
            problems.append(f"{where}: min above max")
        fields.append(DictionaryField(name, form, kind, parsed, validation, minimum, maximum))
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        problems.append("field names are not unique")
    if fields and fields[0].type != "text":
        problems.append("the first field (the record id) must be a text field")
    return problems, fields


def _value_problem(field: DictionaryField, value: str, missing_codes: frozenset[str]) -> str | None:
    if value in missing_codes:
        return None
    if field.type in CHOICE_TYPES:
        return None if value in field.choices else f"{value!r} is not one of its codes {sorted(field.choices)}"
    if field.type == "yesno":
        return None if value in ("0", "1") else f"{value!r} is not 0 or 1"
    if field.validation in NUMERIC_VALIDATION:
        pattern = r"^-?\d+$" if field.validation == "integer" else r"^-?\d+(\.\d+)?$"
        if not re.match(pattern, value):
            return f"{value!r} is not {'an integer' if field.validation == 'integer' else 'a number'}"
        number = float(value)
        if (field.minimum is not None and number < field.minimum) or (
            field.maximum is not None and number > field.maximum
        ):
            return f"{value!r} is outside [{field.minimum}, {field.maximum}]"
    return None


def check_records(content: str, fields: list[DictionaryField], missing_codes: frozenset[str]) -> list[str]:
    """Every broken rule of a flat record file against the dictionary's fields."""
    problems = [
        f"missing-data code {code!r} has other characters" for code in missing_codes if not MISSING_CODE.match(code)
    ]
    rows = list(csv.reader(io.StringIO(content, newline="")))
    if not rows or not fields:
        return [*problems, "no header or no dictionary"]
    header = rows[0]
    by_name = {field.name: field for field in fields}
    forms = {field.form for field in fields}
    complete = {f"{form}_complete": form for form in forms}
    record_id = fields[0].name
    if header[0] != record_id:
        problems.append(f"first column {header[0]!r} is not the record id field {record_id!r}")
    unknown = [name for name in header if name not in by_name and name not in complete and name not in REPEAT_COLUMNS]
    if unknown:
        problems.append(f"columns outside the dictionary: {unknown}")
    repeating = all(column in header for column in REPEAT_COLUMNS)
    base_form = fields[0].form
    instances: set[tuple[str, str, str]] = set()
    for number, row in enumerate(rows[1:], start=2):
        cells = dict(zip(header, row, strict=True))
        if not cells[record_id]:
            problems.append(f"line {number}: no record id")
        instrument = cells.get("redcap_repeat_instrument", "") if repeating else ""
        instance = cells.get("redcap_repeat_instance", "") if repeating else ""
        if instrument:
            if instrument not in forms or instrument == base_form:
                problems.append(f"line {number}: repeat instrument {instrument!r} is not a repeating form")
            if not re.match(r"^[1-9]\d*$", instance):
                problems.append(f"line {number}: repeat instance {instance!r} is not a positive integer")
        elif instance:
            problems.append(f"line {number}: an instance without an instrument")
        key = (cells[record_id], instrument, instance)
        if key in instances:
            problems.append(f"line {number}: {key} appears twice")
        instances.add(key)
        row_form = instrument or base_form
        for name, value in cells.items():
            if not value or name in REPEAT_COLUMNS or name == record_id:
                continue
            form = complete.get(name) or by_name[name].form if name in by_name or name in complete else None
            if form != row_form:
                problems.append(f"line {number}: {name} belongs to form {form!r}, not the row's {row_form!r}")
            elif name in complete:
                if value not in ("0", "1", "2"):
                    problems.append(f"line {number}: {name} = {value!r} is not a form status 0, 1 or 2")
            elif (problem := _value_problem(by_name[name], value, missing_codes)) is not None:
                problems.append(f"line {number}: {name}: {problem}")
    return problems
