"""Depression quality measures computed from stored PHQ-9 totals (pure: no web framework, no database).

Two measures, on the clinic's current PHQ-9 measurements only (``../shared/reference/clinical-feedback.md``):

``depression-remission-12m``: the logic of CMS159 "Depression Remission at Twelve Months", as its FHIR/QI-Core
library states it (cqframework/ecqm-content-qicore-2024, ``input/cql/DepressionRemissionatTwelveMonthsFHIR.cql``):

- denominator identification period: from 14 months before the measurement period's start (included) to 2 months
  before it (excluded: the library's interval is closed at its start and open at its end);
- index: the patient's first PHQ-9 total > 9 measured in that period (the denominator);
- assessment window: the index date plus 12 months, ± 60 days, both ends included (day precision);
- numerator ``remission``: the last PHQ-9 total in the window (by time) is < 5.

``depression-response-6m``: in the style of HEDIS DRR-E "Depression Remission or Response" (NCQA's specification is
copyrighted; only its public summary is used):

- index: the patient's first PHQ-9 total > 9 in the index period (below); follow-up window: 120 to 240 days after
  the index date, both included;
- numerators: ``follow_up`` (a PHQ-9 in the window), ``remission`` (the most recent in the window is < 5) and
  ``response`` (the most recent in the window is at least 50 % below the index score: 2 × latest ≤ index).

What the references do not give for the 6-month measure, and what this module decides:

- the index (intake) period: the reference gives none. It is the measurement period moved 240 days earlier (its first
  day minus 240 days to its last day minus 240 days, both included), so every counted follow-up window closes by the
  end of the measurement period (results are final once it has ended) and consecutive measurement periods count
  each index once;
- "elevated" PHQ-9: the reference does not give the threshold; this module uses CMS159's index rule, total > 9.

Not applied, because the service does not store them: diagnoses (major depression, dysthymia), encounters (CMS159
ties the index PHQ-9 to a finished encounter with an active diagnosis), age (≥ 12 at the index), exclusions (hospice,
palliative care, death, bipolar disorder, personality disorder, psychotic disorders, pervasive developmental
disorder), and the PHQ-9M (adolescent) form, which is not an instrument here. So these are measures *of this
service's data*, not certified eCQM or HEDIS results.

Which PHQ-9s count: current versions only (an amended measurement counts as amended, at its amended time); a total
with no value (too many items missing) is not a total; a prorated total (PHQ-9 allows two missing items) counts
unrounded, so 9.43 is > 9 and starts an index although it is below the caseness cut-off of 10.

Dates: a measurement's date is its ``measured_at`` date in the clinic's time zone (its ``timezone`` setting, UTC by
default), and "today" (is a window open yet?) is the clinic's today. "Plus 12
months" is calendar arithmetic: the same day of the month, or the month's last day when it has no such day (CQL's
rule, and ``dateutil.relativedelta``'s): 31 March + 12 months is 31 March; 29 February 2024 + 12 months is 28 February
2025; 31 December − 2 months is 31 October; 30 April − 14 months is 28 (or 29) February.
"""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

INDEX_ABOVE = 9
"""An index PHQ-9 total is greater than this (CMS159: > 9)."""
REMISSION_BELOW = 5
"""Remission: a PHQ-9 total below this (CMS159, and the DRR-E summary: < 5)."""


class Rate(StrEnum):
    REMISSION = "remission"
    RESPONSE = "response"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class MeasureDefinition:
    id: str
    title: str
    description: str
    source: str
    rates: tuple[Rate, ...]
    window_text: str


REMISSION_12M = MeasureDefinition(
    id="depression-remission-12m",
    title="Depression remission at twelve months (CMS159 logic on stored PHQ-9 totals)",
    description=(
        "Patients whose first PHQ-9 total > 9 falls between 14 months (included) and 2 months (excluded) before "
        "the measurement period's start; remission when the last PHQ-9 total in the window 12 months ± 60 days after "
        "that index date is < 5."
    ),
    source=(
        "CMS159 Depression Remission at Twelve Months, FHIR/QI-Core library "
        "DepressionRemissionatTwelveMonthsFHIR.cql (cqframework/ecqm-content-qicore-2024)"
    ),
    rates=(Rate.REMISSION,),
    window_text="the index date + 12 months, ± 60 days (both ends included)",
)
RESPONSE_6M = MeasureDefinition(
    id="depression-response-6m",
    title="Depression remission or response at six months (in the style of HEDIS DRR-E, on stored PHQ-9 totals)",
    description=(
        "Patients whose first PHQ-9 total > 9 falls in the measurement period moved 240 days earlier; in the "
        "follow-up window 120 to 240 days after that index date: a PHQ-9 done (follow_up), the most recent one < 5 "
        "(remission), the most recent one at least 50 % below the index score (response)."
    ),
    source=(
        "In the style of HEDIS DRR-E Depression Remission or Response (NCQA's public summary; the HEDIS "
        "specification is copyrighted and not reproduced)"
    ),
    rates=(Rate.FOLLOW_UP, Rate.REMISSION, Rate.RESPONSE),
    window_text="120 to 240 days after the index date (both included)",
)
MEASURES: dict[str, MeasureDefinition] = {m.id: m for m in (REMISSION_12M, RESPONSE_6M)}
MEASURE_IDS = tuple(MEASURES)

NOT_APPLIED = (
    "Diagnoses (major depression or dysthymia) are not checked: the service does not store them.",
    "Encounters are not checked (CMS159 ties the index PHQ-9 to a finished encounter): the service does not store "
    "them.",
    "Age (12 or older at the index) is not checked: the service does not store dates of birth.",
    "Exclusions (hospice, palliative care, death, bipolar disorder, personality disorder, schizophrenia or psychotic "
    "disorder, pervasive developmental disorder) are not applied: the service does not store them.",
    "The PHQ-9M (adolescent version) is not an instrument of this service; only PHQ-9 totals count.",
    "Dates are the measurements' dates in the clinic's time zone (its timezone setting; UTC unless set).",
)
"""What the measures leave out, stated in every answer."""
INDEX_PERIOD_NOTE = {
    REMISSION_12M.id: "CMS159's denominator identification period: 14 months (included) to 2 months (excluded) "
    "before the measurement period's start; the measurement period's end is not used by the logic.",
    RESPONSE_6M.id: "Not given by the reference: chosen as the measurement period moved 240 days earlier (both ends "
    "included), so every counted follow-up window closes by the period's end. 'Elevated' is not defined by the "
    "reference either: CMS159's index rule (total > 9) is used.",
}


@dataclass(frozen=True)
class Period:
    """Calendar days, both included."""

    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Total:
    """One current PHQ-9 total of a patient."""

    patient_id: uuid.UUID
    measurement_id: uuid.UUID
    measured_at: datetime
    value: float
    zone: tzinfo = UTC
    """The clinic's time zone: the total's date is the date it was measured there."""

    @property
    def day(self) -> date:
        return self.measured_at.astimezone(self.zone).date()


class GapStatus(StrEnum):
    UPCOMING = "upcoming"
    """The window has not opened yet."""
    OPEN = "open"
    """The window is open today: a PHQ-9 now would count."""
    CLOSED = "closed"
    """The window closed with no PHQ-9 in it."""


@dataclass(frozen=True)
class PatientOutcome:
    """One patient of the denominator: the index, the window, and the last PHQ-9 in it (if any)."""

    patient_id: uuid.UUID
    index: Total
    window: Period
    last_in_window: Total | None

    @property
    def follow_up(self) -> bool:
        return self.last_in_window is not None

    @property
    def remission(self) -> bool:
        return self.last_in_window is not None and self.last_in_window.value < REMISSION_BELOW

    @property
    def response(self) -> bool:
        """At least 50 % below the index score, compared without division: 2 × latest ≤ index."""
        return self.last_in_window is not None and 2 * self.last_in_window.value <= self.index.value

    def met(self, rate: Rate) -> bool:
        return {Rate.REMISSION: self.remission, Rate.RESPONSE: self.response, Rate.FOLLOW_UP: self.follow_up}[rate]

    def gap_status(self, today: date) -> GapStatus:
        if today < self.window.start:
            return GapStatus.UPCOMING
        return GapStatus.OPEN if today <= self.window.end else GapStatus.CLOSED


@dataclass(frozen=True)
class MeasureResult:
    measure: MeasureDefinition
    period: Period
    index_period: Period
    outcomes: tuple[PatientOutcome, ...]
    """Denominator patients, in order of their index."""
    zone: tzinfo = UTC
    """The clinic's time zone, in which the days were counted (and today is today)."""

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    @property
    def denominator(self) -> int:
        return len(self.outcomes)

    def numerator(self, rate: Rate) -> int:
        return sum(outcome.met(rate) for outcome in self.outcomes)

    def rate(self, rate: Rate) -> float | None:
        return self.numerator(rate) / self.denominator if self.denominator else None

    def in_numerator(self, rate: Rate) -> tuple[PatientOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.met(rate))

    @property
    def care_gaps(self) -> tuple[PatientOutcome, ...]:
        """Patients with an index and no PHQ-9 in their window (yet)."""
        return tuple(outcome for outcome in self.outcomes if not outcome.follow_up)


def add_months(day: date, months: int) -> date:
    """``day`` plus (or minus) whole calendar months; a day the target month lacks becomes its last day."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def index_period(measure: MeasureDefinition, period: Period) -> Period:
    if measure is REMISSION_12M:
        return Period(add_months(period.start, -14), add_months(period.start, -2) - timedelta(days=1))
    return Period(period.start - timedelta(days=240), period.end - timedelta(days=240))


def window(measure: MeasureDefinition, index_day: date) -> Period:
    if measure is REMISSION_12M:
        year_after = add_months(index_day, 12)
        return Period(year_after - timedelta(days=60), year_after + timedelta(days=60))
    return Period(index_day + timedelta(days=120), index_day + timedelta(days=240))


def data_days(measure: MeasureDefinition, period: Period) -> Period:
    """The days whose PHQ-9s the measure can use: the index period's first day to the last window's last day."""
    indexed = index_period(measure, period)
    return Period(indexed.start, window(measure, indexed.end).end)


def evaluate(
    measure: MeasureDefinition, period: Period, totals: Iterable[Total], *, zone: tzinfo = UTC
) -> MeasureResult:
    """The measure over ``totals`` (any order; ties in time keep the given order, so give them in storage order)."""
    indexed = index_period(measure, period)
    by_patient: defaultdict[uuid.UUID, list[Total]] = defaultdict(list)
    for total in totals:
        by_patient[total.patient_id].append(total)
    outcomes = []
    for patient_id, series in by_patient.items():
        series.sort(key=lambda total: total.measured_at)
        index = next((t for t in series if t.day in indexed and t.value > INDEX_ABOVE), None)
        if index is None:
            continue
        opens_closes = window(measure, index.day)
        in_window = [t for t in series if t.day in opens_closes]
        outcomes.append(PatientOutcome(patient_id, index, opens_closes, in_window[-1] if in_window else None))
    outcomes.sort(key=lambda outcome: (outcome.index.measured_at, str(outcome.patient_id)))
    return MeasureResult(measure=measure, period=period, index_period=indexed, outcomes=tuple(outcomes), zone=zone)
