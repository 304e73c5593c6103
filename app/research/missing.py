"""Missing-data codes of the research exports: why a cell is empty, in each format's own way.

Four reasons are told apart, because a week the patient declined is not a week the service never asked:

- ``UNANSWERED``: the measurement was taken but this item was left unanswered (for a score: too many of its items
  were unanswered to score it; for a band: its score is missing for that reason);
- ``NOT_ADMINISTERED``: the instrument was not given in that week's occasion (no measurement, no declined or missed
  occasion of it);
- ``DECLINED``: a scheduled occasion of the instrument (``app.care``'s ``AssessmentOccurrence``) was declined;
- ``MISSED``: a scheduled occasion was still open when its window closed (``due_by`` passed at export time).

The last two exist only where the clinic schedules assessments. Each reason has one numeric code, written as is in
CSV (and named in the codebook's ``missingValues``), declared user-missing in SPSS (one range over the four codes:
SPSS allows three discrete values or a range plus one), written as a Stata extended missing value (``.a`` to
``.d``), and written as a null in Parquet, where the instrument's status column of the wide layout tells why. R's
haven reads the SPSS codes as user-defined missing (``read_sav(user_na = TRUE)``) and the Stata ones as tagged
missing (``na_tag``). The codes lie below every score and item minimum of the shipped definitions (a test checks).

Text columns cannot hold these natively in SPSS (at most three discrete missing strings) or Stata (no extended
missing for strings): there a missing text cell is empty, and the instrument's status column (and, for an
unanswered item, a status of completed) tells why.
"""

from __future__ import annotations

from enum import IntEnum

from pyreadstat.pyclasses import MissingRange


class Missing(IntEnum):
    """A missing cell's reason; the value is its numeric code (CSV, SPSS)."""

    UNANSWERED = -91
    NOT_ADMINISTERED = -92
    DECLINED = -93
    MISSED = -94

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def stata(self) -> str:
        """The Stata extended missing value's letter (``.a`` is written ``a`` to pyreadstat)."""
        return STATA_TAGS[self]


LABELS = {
    Missing.UNANSWERED: "Item not answered",
    Missing.NOT_ADMINISTERED: "Instrument not administered that week",
    Missing.DECLINED: "Occasion declined",
    Missing.MISSED: "Occasion missed",
}
STATA_TAGS = {
    Missing.UNANSWERED: "a",
    Missing.NOT_ADMINISTERED: "b",
    Missing.DECLINED: "c",
    Missing.MISSED: "d",
}

COMPLETED = 1
"""The status of an occasion that was answered; any other status is the code of its missing reason."""
STATUS_LABELS: dict[int, str] = {
    COMPLETED: "Completed",
    Missing.NOT_ADMINISTERED.value: Missing.NOT_ADMINISTERED.label,
    Missing.DECLINED.value: Missing.DECLINED.label,
    Missing.MISSED.value: Missing.MISSED.label,
}

SPSS_MISSING_RANGE = MissingRange(lo=float(min(Missing)), hi=float(max(Missing)))
"""The four codes as one SPSS user-missing range (they are consecutive)."""

CODE_LABELS: dict[int, str] = {code.value: code.label for code in Missing}
"""Value labels of the codes, added to every coded numeric column (SPSS) and written as CSV's coding."""


def description() -> str:
    """The codes as one sentence, for the codebook's field descriptions."""
    listed = "; ".join(f"{code.value} (Stata .{code.stata}) {code.label.lower()}" for code in Missing)
    return f"Missing-data codes: {listed}."


def missing_values() -> list[dict[str, str]]:
    """The codebook's ``missingValues`` (Table Schema v2: value and label), the empty string first."""
    return [
        {"value": "", "label": "No value (no session, or not applicable)"},
        *({"value": str(code.value), "label": code.label} for code in Missing),
    ]
