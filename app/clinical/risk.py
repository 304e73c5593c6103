"""Which flags are risk flags, and which raise alerts of what priority (pure: the alerts, the series and the charts
all read it from here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RISK_FLAGS = ("item9_positive", "item9_endorsed")
"""PHQ-9 and BDI-II item 9 (thoughts of death or self-harm) and FSCRS item 9 (wanting to hurt oneself)."""

RISK_ITEM = "9"
"""The item every risk flag reads (each instrument's ``flags`` in scales/: PHQ-9, BDI-II, FSCRS item 9)."""

ITEM9_MISSING = "item9_missing"
"""The flag the scorer raises instead of a risk flag when item 9 is unanswered (never inferred or prorated): it
raises a routine prompt (someone should ask), not an urgent alert."""

NOT_ON_TRACK = "not_on_track"

ALERT_FLAGS = (*RISK_FLAGS, ITEM9_MISSING)
"""The measurement flags that raise an alert (``not_on_track`` is raised by the progress rule, not by a flag)."""

URGENT = "urgent"
ROUTINE = "routine"
PRIORITIES = (URGENT, ROUTINE)
KINDS = (*ALERT_FLAGS, NOT_ON_TRACK)

HISTORICAL_ALERT_DAYS = 14
"""The default of a clinic's ``historical_alert_days`` (issue 21): alerts from measurements older than this when
recorded are history (imported), shown but never paged."""
HISTORICAL_ALERT_DAYS_MIN = 1
"""At least a day, so that a measurement taken within the last day is never historical."""
HISTORICAL_ALERT_DAYS_MAX = 3650
"""A bound on the setting (ten years), not a clinical rule."""


def priority_of(kind: str) -> str:
    """``urgent`` for risk flags (paged unless historical), ``routine`` for the rest (item9_missing, not_on_track)."""
    return URGENT if kind in RISK_FLAGS else ROUTINE


def item_value(items: Mapping[str, Any]) -> int | None:
    """The item-9 answer of a measurement's items (None when unanswered)."""
    value = items.get(RISK_ITEM)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def risk_first(flags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Risk flags (item 9) first, then the others, each group in stored order."""
    return tuple(sorted(flags, key=lambda flag: flag not in RISK_FLAGS))
