"""Every URI and code the FHIR layer emits or recognises, in one place.

Product URIs follow the repository's ``urn:compassion-outcomes:`` namespace (as the patients' local identifier
system does): canonical URLs are identifiers, never fetched.
"""

from __future__ import annotations

import re

FHIR_VERSION = "4.0.1"
FHIR_MEDIA_TYPE = "application/fhir+json"

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SCORE_UNIT = "{score}"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
"""SDC 4 / R5 name of ``ordinalValue``; both are read."""
WEIGHT_EXTENSIONS = (ORDINAL_VALUE, ITEM_WEIGHT)

SDC = "http://hl7.org/fhir/uv/sdc"
CALCULATED_EXPRESSION = f"{SDC}/StructureDefinition/sdc-questionnaire-calculatedExpression"
"""SDC: a FHIRPath expression a form filler evaluates to fill a (read-only) item, here the instrument's total."""
OBSERVATION_EXTRACT = f"{SDC}/StructureDefinition/sdc-questionnaire-observationExtract"
"""SDC observation-based extraction: the item's answer becomes an Observation (coded with the item's code)."""
EXTRACT_OPERATION = f"{SDC}/OperationDefinition/QuestionnaireResponse-extract"
"""SDC's ``QuestionnaireResponse/$extract``, as the CapabilityStatement names it."""
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
FHIRPATH = "text/fhirpath"

PRODUCT = "urn:compassion-outcomes"
QUESTIONNAIRE_BASE = f"{PRODUCT}:questionnaire"
"""Canonical URL of an instrument's Questionnaire: ``urn:compassion-outcomes:questionnaire:<instrument id>``."""
ITEM_SYSTEM = f"{PRODUCT}:item"
"""Item codes ``<instrument>.<item number>`` (``gad7.3``), and ``unscored`` for a form item to ignore."""
SCORE_SYSTEM = f"{PRODUCT}:score"
"""Score codes ``<instrument>.<score key>`` (``scs_sf.self_kindness``), for scores without a LOINC code."""
BAND_SYSTEM = f"{PRODUCT}:band"
"""Band labels (``moderately_severe``) as Observation interpretations."""
ANSWER_SYSTEM = f"{PRODUCT}:answer"
"""Option codes of options without a LOINC code: system ``…:answer:<instrument>:<option set>``, code the value."""
ITEM_MAP_EXTENSION = f"{PRODUCT}:fhir:item-map"
"""Extension on a third-party Questionnaire item: ``valueCoding`` in ``ITEM_SYSTEM`` or ``SCORE_SYSTEM`` naming
the instrument item (or total) the item asks. The explicit mapping for forms without usable item codes."""
UNSCORED_ITEM = "unscored"
CLINIC_SYSTEM = f"{PRODUCT}:clinic"
"""Identifier system of a clinic (the value its id): a Task's requester, as a logical Organization reference (this
server serves no Organization resources)."""

SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
"""SDC's temporary codes (Structured Data Capture IG, CodeSystem ``temp``): ``complete-questionnaire`` (a Task's
code), ``questionnaire`` (the input naming the form), ``questionnaire-response`` (the output naming the answer)."""
COMPLETE_QUESTIONNAIRE = "complete-questionnaire"
TASK_QUESTIONNAIRE_INPUT = "questionnaire"
TASK_RESPONSE_OUTPUT = "questionnaire-response"
SDC_TASK_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-task"
TASK_STATUSES = (
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
)
"""R4's TaskStatus codes (http://hl7.org/fhir/task-status), the binding of ``Task.status`` and its search."""
TASK_STATUS_SYSTEM = "http://hl7.org/fhir/task-status"

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""FHIR's rule for a logical id (the ``id`` datatype); test a whole value with ``fullmatch``."""


def questionnaire_id(instrument_id: str) -> str:
    """The FHIR id of an instrument's Questionnaire: FHIR ids allow no ``_`` (``scs_sf`` → ``scs-sf``)."""
    return instrument_id.replace("_", "-")


def instrument_id(questionnaire_fhir_id: str) -> str:
    """Inverse of ``questionnaire_id`` (instrument ids never contain ``-``)."""
    return questionnaire_fhir_id.replace("-", "_")


def questionnaire_url(instrument: str) -> str:
    return f"{QUESTIONNAIRE_BASE}:{instrument}"


def answer_system(instrument: str, option_set: str) -> str:
    return f"{ANSWER_SYSTEM}:{instrument}:{option_set}"


def item_code(instrument: str, number: str) -> str:
    return f"{instrument}.{number}"


def score_code(instrument: str, key: str) -> str:
    return f"{instrument}.{key}"


MEASURE_BASE = f"{PRODUCT}:measure"
"""Canonical URL of a quality measure's Measure: ``urn:compassion-outcomes:measure:<measure id>``."""
EVALUATE_MEASURE_OPERATION = "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"
"""FHIR R4's ``Measure/[id]/$evaluate-measure``, as the CapabilityStatement names it."""
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
MEASURE_IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
