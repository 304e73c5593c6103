"""REDCap: the data dictionary of the research export, its project set-up, and the shape of its records.

A REDCap project is built from a *data dictionary*, an 18-column CSV, and filled through the *Data Import Tool*
from a flat CSV of records. What this module follows, and where it was read (public pages found with the search
tool; none is REDCap's own manual, which is not public, so each rule is taken from a page that documents it):

- The 18 column headers, in this order (``HEADERS``): REDCap KB article RC-FD-08, "Data Dictionary: Column Reference
  & Advanced Techniques" (https://bdeveer.github.io/REDCap_KB_RAG/RC-FD-08_Data-Dictionary-Column-Reference-and-
  Advanced-Techniques/, "18 aspects (columns A through R)"), and the same list in Sage Bionetworks' ``redcapdd``
  (https://rdrr.io/github/Sage-Bionetworks/redcapdd/man/get_dd_cols.html). ../shared/reference/ecosystem.md §3
  gives the same line.
- Field and form names: lower-case letters, digits and underscores, starting with a letter, unique in the project
  (linkml-redcap, ``variable_field_name`` and ``form_name``, pattern ``^[a-z][a-z0-9_]*$``:
  https://linkml.io/linkml-redcap/reference/data_dictionary/variable_field_name/; UCLA CTSI, "Important Project
  Development Concepts"). A maximum of 100 characters (26 recommended) appeared only in an unattributed excerpt, and
  a REDCap user guide (idea-labs wiki) gives 26 for the Online Designer: names here are at most 32 characters (the
  export's own ``variable_name`` rule), which no source found forbids.
- The first field of the first form is the record identifier, a ``text`` field; a form's fields are contiguous
  (linkml-redcap ``DataDictionary``; Vanderbilt's "Creating a Data Dictionary in REDCap", 2015).
- Field types (``text``, ``radio``, ``yesno``, …) and text validation types (``integer``, ``number``, ``date_ymd``,
  …): linkml-redcap enums ``FieldType`` and ``TextValidationType``.
- Choices: ``code, label | code, label``; codes lower-case letters, digits and underscores (linkml-redcap
  ``choices_calculations_slider_labels`` and ``raw_value``).
- Records: the record identifier is the first column; repeating instruments add ``redcap_repeat_instrument`` and
  ``redcap_repeat_instance``, each form a ``<form>_complete`` status column; blank cells are ignored by an import
  (CCTS "Data Import Tool", https://ccts-bsc.netlify.app/redcap/data-import-tool/; REDCap KB RC-IMP-04, "Record Data
  CSV Import"); a flat row leaves empty every field outside its instrument (linkml-redcap ``record`` schema). The
  status of ``<form>_complete``: 0 Incomplete, 1 Unverified, 2 Complete (linkml-redcap ``FormCompleteStatus``,
  https://linkml.io/linkml-redcap/reference/record/FormCompleteStatus/; REDCapR ``constant("form_complete")``).
- Missing-data codes are a project setting (Project Setup → Additional Customizations → Missing Data Codes), entered
  as ``code, label``; codes use letters, digits, dots, dashes and underscores, must never clash with a real value,
  are stored as the field's literal value and may be imported (University of Wisconsin KB 108107, "REDCap: Missing
  Data Codes"; Utah CTSI, "Missing Data Codes"). REDCap's own list of suggested codes was not found, so the codes
  here are this service's (``MISSING_CODES``).

Design: a *classic* project with **repeating instruments** (not longitudinal events, which need events and arms set
up to match every patient's schedule). Form ``participant`` holds only ``record_id``, the project pseudonym; each
instrument is a repeating form, one instance per measurement in time order, so two answers in one week are two
instances and nothing is dropped. Scores are ``text`` fields validated as ``integer`` or ``number`` with the
definition's range, not ``calc`` fields: the service's scores (prorating, reversals, composite rules) are the
record, and a REDCap calculation would recompute and could disagree. No calendar date is exported (the export is
de-identified): time is ``<form>_days`` and ``<form>_week`` since the patient's first measurement.

Wording follows the licence as ``app/instruments`` and the other exports do: an item's text only where the
definition's licence lets it ship (``text_shippable``), option labels only where the definition carries them; a
clinic's privately loaded wording never. Elsewhere a field is labelled neutrally ("BDI-II item 3") and a choice by
its code alone ("0, 0"), said in the field note.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from app.research.schemas import RedcapMissingCode, RedcapSetup
from app.research.variables import band_codes, public_item_text, score_title, variable_name
from app.scoring.definition import InstrumentDefinition, MissingPolicy, Rule, Score

HEADERS = (
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
)
RECORD_ID = "record_id"
BASE_FORM = "participant"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
COMPLETE = 2
"""Form status written for every exported instance: the measurement was completed in the service."""


@dataclass(frozen=True)
class MissingCode:
    code: str
    label: str
    meaning: str


UNANSWERED = MissingCode("UNANSWERED", "Item not answered", "The patient answered the instrument but not this item.")
MISSING_CODES = (
    UNANSWERED,
    MissingCode(
        "NOT_GIVEN",
        "Instrument not administered that week",
        "Reserved: a repeating-instrument project has no instance for a week without a measurement.",
    ),
    MissingCode("DECLINED", "Occasion declined", "Reserved: declined occasions come from schedules."),
    MissingCode("MISSED", "Occasion missed", "Reserved: missed occasions come from schedules."),
)
"""This service's own REDCap missing-data codes (``app/research/missing.py`` did not exist when this was written;
merge with it when it does). Only ``UNANSWERED`` is written today: the records hold only measurements that were
taken, so a week without one has no instance at all; declined and missed occasions (from schedules) are not yet
written as instances. A score that could not be computed (too many unanswered items) is left blank."""


@dataclass(frozen=True)
class Field:
    """One row of the data dictionary."""

    name: str
    form: str
    type: str
    label: str
    choices: str = ""
    note: str = ""
    validation: str = ""
    minimum: str = ""
    maximum: str = ""
    annotation: str = ""

    def row(self) -> list[str]:
        row = [""] * len(HEADERS)
        row[0], row[1], row[3], row[4], row[5] = self.name, self.form, self.type, self.label, self.choices
        row[6], row[7], row[8], row[9], row[17] = (
            self.note,
            self.validation,
            self.minimum,
            self.maximum,
            self.annotation,
        )
        return row


@dataclass(frozen=True)
class Source:
    """Where a form field's value comes from in a measurement."""

    kind: str
    """``days``, ``week``, ``session``, ``version``, ``item``, ``score``, ``band`` or ``prorated``."""
    key: str = ""
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    """A score's range: a stored value outside it (an older definition's) is not written, as the import refuses it."""


@dataclass(frozen=True)
class Form:
    """One repeating instrument: its fields, each with where its value comes from."""

    name: str
    definition: InstrumentDefinition
    fields: tuple[tuple[Field, Source], ...]

    @property
    def complete(self) -> str:
        return f"{self.name}_complete"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def choices(pairs: Sequence[tuple[str, str]]) -> str:
    return " | ".join(f"{code}, {label}" for code, label in pairs)


def integer_score(definition: InstrumentDefinition, spec: Score) -> bool:
    """Whether every value of the score is a whole number: an unprorated sum of items, or a sum of such scores."""
    if not (float(spec.minimum).is_integer() and float(spec.maximum).is_integer()):
        return False
    if spec.rule is Rule.SUM:
        return spec.missing is None or spec.missing.policy is not MissingPolicy.PRORATE
    if spec.rule is Rule.SUM_OF_SCORES:
        return all(integer_score(definition, definition.score(part.score)) for part in spec.components)
    return False


def _time_fields(definition: InstrumentDefinition) -> list[tuple[Field, Source]]:
    form = definition.id
    short = definition.short_name
    return [
        (
            Field(
                f"{form}_days",
                form,
                "text",
                f"{short}: days since first measurement",
                note="Days from the patient's first measurement (any instrument) to this one, UTC calendar dates.",
                validation="integer",
                minimum="0",
            ),
            Source("days", integer=True),
        ),
        (
            Field(
                f"{form}_week",
                form,
                "text",
                f"{short}: week since first measurement",
                note="days // 7 (week 0 holds the first measurement).",
                validation="integer",
                minimum="0",
            ),
            Source("week", integer=True),
        ),
        (
            Field(
                f"{form}_session",
                form,
                "text",
                f"{short}: therapy session number",
                note="Empty when the measurement was not attached to a session.",
                validation="integer",
                minimum="1",
            ),
            Source("session", integer=True),
        ),
        (
            Field(
                f"{form}_version",
                form,
                "text",
                f"{short}: definition version",
                note="Version of the instrument definition the measurement was scored under.",
            ),
            Source("version"),
        ),
    ]


def _item_fields(definition: InstrumentDefinition) -> list[tuple[Field, Source]]:
    fields = []
    for item in definition.items:
        text = public_item_text(definition, item)
        options = definition.options_for(item)
        pairs = [(str(option.value), option.label or str(option.value)) for option in options]
        notes = []
        if text is None:
            notes.append("Item wording is not shipped (licence).")
        if not any(option.label for option in options):
            notes.append("Options are shown by their codes: the definition ships no labels.")
        if not item.scored:
            notes.append("Not scored.")
        fields.append(
            (
                Field(
                    variable_name(definition.id, f"i{item.number}"),
                    definition.id,
                    "radio",
                    text or f"{definition.short_name} item {item.number}",
                    choices=choices(pairs),
                    note=" ".join(notes),
                ),
                Source("item", key=item.number),
            )
        )
    return fields


def _score_fields(definition: InstrumentDefinition) -> list[tuple[Field, Source]]:
    fields = []
    for spec in definition.scores:
        integer = integer_score(definition, spec)
        fields.append(
            (
                Field(
                    variable_name(definition.id, spec.key),
                    definition.id,
                    "text",
                    score_title(definition, spec),
                    note=f"{spec.direction.value.replace('_', ' ').capitalize()}. Scored by the service.",
                    validation="integer" if integer else "number",
                    minimum=_number(spec.minimum),
                    maximum=_number(spec.maximum),
                ),
                Source("score", key=spec.key, integer=integer, minimum=spec.minimum, maximum=spec.maximum),
            )
        )
        if spec.bands:
            pairs = [(str(code), label.replace("_", " ")) for label, code in band_codes(spec).items()]
            fields.append(
                (
                    Field(
                        variable_name(definition.id, spec.key, "band"),
                        definition.id,
                        "radio",
                        f"{score_title(definition, spec)}: band",
                        choices=choices(pairs),
                        note="Band of the score, coded in increasing order of the score.",
                    ),
                    Source("band", key=spec.key),
                )
            )
        if spec.missing is not None and spec.missing.policy is MissingPolicy.PRORATE:
            fields.append(
                (
                    Field(
                        variable_name(definition.id, spec.key, "prorated"),
                        definition.id,
                        "yesno",
                        f"{score_title(definition, spec)}: prorated",
                        note="Yes when the score was prorated over unanswered items (sum × items / answered).",
                    ),
                    Source("prorated", key=spec.key, integer=True),
                )
            )
    return fields


def forms(definitions: Sequence[InstrumentDefinition]) -> list[Form]:
    """One repeating form per instrument, named by its id: time fields, then items, then scores."""
    return [
        Form(
            definition.id,
            definition,
            tuple(_time_fields(definition) + _item_fields(definition) + _score_fields(definition)),
        )
        for definition in definitions
    ]


RECORD_FIELD = Field(
    RECORD_ID,
    BASE_FORM,
    "text",
    "Pseudonymous patient id",
    note="The export project's keyed pseudonym: stable within the project, different between projects.",
)


def dictionary_rows(definitions: Sequence[InstrumentDefinition]) -> list[list[str]]:
    return [RECORD_FIELD.row(), *(field.row() for form in forms(definitions) for field, _ in form.fields)]


def dictionary_csv(definitions: Sequence[InstrumentDefinition]) -> str:
    """The data dictionary as REDCap's CSV (UTF-8, a header row, ``\\n`` line ends, quoting where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADERS)
    writer.writerows(dictionary_rows(definitions))
    return buffer.getvalue()


def record_header(definitions: Sequence[InstrumentDefinition]) -> list[str]:
    """The records' columns: record id first, the repeat columns, each form's fields and its status column."""
    header = [RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE, f"{BASE_FORM}_complete"]
    for form in forms(definitions):
        header += [field.name for field, _ in form.fields]
        header.append(form.complete)
    return header


SETUP_NOTES = (
    "Create a classic (not longitudinal) project and upload the data dictionary (Project Setup or Online Designer).",
    "Enable 'Repeatable instruments' (Project Setup, optional modules) and make every instrument form repeatable; "
    f"'{BASE_FORM}' stays non-repeating: it holds only the record id.",
    "Enter the missing-data codes (Project Setup, Additional Customizations, Missing Data Codes) as 'code, label', "
    "one per line, before importing records: unanswered items carry one.",
    "Import the records (format=redcap) with the Data Import Tool: one row per patient for the participant form, "
    "then one row per measurement, its redcap_repeat_instance numbering the patient's measurements of that "
    "instrument in time order.",
    "Scores are stored values from the service (text fields validated as integer or number), not REDCap "
    "calculations. No calendar dates are exported: time is days and weeks since the patient's first measurement.",
)


def setup(definitions: Sequence[InstrumentDefinition]) -> RedcapSetup:
    return RedcapSetup(
        project_type="classic",
        record_id_field=RECORD_ID,
        base_form=BASE_FORM,
        repeating_instruments=[definition.id for definition in definitions],
        missing_data_codes=[RedcapMissingCode(code=m.code, label=m.label, meaning=m.meaning) for m in MISSING_CODES],
        missing_data_codes_text="\n".join(f"{m.code}, {m.label}" for m in MISSING_CODES),
        steps=list(SETUP_NOTES),
    )
