"""Explicit item mappings for published forms whose items carry no usable code.

Each entry was written by reading the form (its item wording and order) against the instrument definition; the
server never guesses by position or text at run time. A form applies when its ``url`` (or, for an adaptive form
contained in a response, one of its ``derivedFrom``) is listed here. Every other form without LOINC item codes needs
the ``urn:compassion-outcomes:fhir:item-map`` extension on its items (see ``app.fhir.form_mapping``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownForm:
    instrument: str
    items: dict[str, str]
    """linkId → the instrument's item number."""
    source: str


KNOWN_FORMS: dict[str, KnownForm] = {
    "http://hl7.org/fhir/uv/sdc/Questionnaire/questionnaire-sdc-profile-example-PHQ9": KnownForm(
        instrument="phq9",
        items={f"H1/T1/Q{number}": str(number) for number in range(1, 10)},
        source=(
            "HL7 SDC IG example PHQ-9 (CC0), also answered by Stanford Spezi and ResearchKit: H1/T1/Q1…Q9 ask PHQ-9 "
            "items 1…9 in the published order ('Little interest or pleasure…' … 'Thoughts that you would be better "
            "off dead…'); its total H1/TS carries LOINC 44261-6 itself."
        ),
    ),
    "http://biodesign.stanford.edu/fhir/questionnaire/GAD-7": KnownForm(
        instrument="gad7",
        items={
            "2bab9480-5251-4997-8a2e-937a1701cfe9": "1",  # Feeling nervous, anxious, or on edge
            "d8c78a49-c02c-4986-800c-b076a5bb3553": "2",  # Not being able to stop or control worrying
            "9756848f-1360-4e72-8884-a3bdc08799ed": "3",  # Worrying too much about different things
            "4158b3d6-c218-42f4-8e83-42932e590100": "4",  # Trouble relaxing
            "1c05b1f1-763d-44cc-bb72-0a833b581aba": "5",  # Being so restless that it's hard to sit still
            "2f0858ee-23d0-4cd0-86f7-a63609b62f6a": "6",  # Becoming easily annoyed or irritable
            "8c6a877a-3867-4b36-c097-2b342649cadb": "7",  # Feeling as if something awful might happen
        },
        source="Stanford ResearchKitOnFHIR GAD-7 (MIT): UUID linkIds, no codes; items in the published GAD-7 order.",
    ),
}


def known_form(urls: Iterable[object]) -> KnownForm | None:
    """The entry for the first listed canonical (``url`` or ``url|version``) among ``urls``, if any."""
    for url in urls:
        if isinstance(url, str) and (entry := KNOWN_FORMS.get(url.partition("|")[0])) is not None:
            return entry
    return None
