"""Which flags are risk flags (pure: the alerts, the series and the charts all read it from here)."""

from __future__ import annotations

RISK_FLAGS = ("item9_positive", "item9_endorsed")
"""PHQ-9 and BDI-II item 9 (thoughts of death or self-harm) and FSCRS item 9 (wanting to hurt oneself)."""


def risk_first(flags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Risk flags (item 9) first, then the others, each group in stored order."""
    return tuple(sorted(flags, key=lambda flag: flag not in RISK_FLAGS))
