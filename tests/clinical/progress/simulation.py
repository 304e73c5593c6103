"""A SIMULATION of PHQ-9 courses for validating the progress judgement: not norms, not data, not a clinical claim.

Each course is weekly (baseline at week 0, then ``weeks`` more), with a baseline drawn uniformly from 10 to 22 (a case
by the PHQ-9 ≥ 10 cut-off) and a latent path y0 + s·ln(1 + week), observed with N(0, ``noise``²) error, rounded and
clipped to 0–24 (the simulated answers keep item 9 at 0, so that no risk alert is raised: 24 is then the largest
total). The slope s per course, by kind:

- ``improving``: s ~ N(``improving_slope``, ``slope_sd``²), a fast decline;
- ``typical``: s ~ N(``typical_slope``, ``slope_sd``²), a slower decline;
- ``deteriorating``: s ~ N(``deteriorating_slope``, ``slope_sd``²), a rise.

Every number below is a parameter of this simulation, chosen only so that the three kinds differ the way the
progress endpoint must tell apart; none is an estimate from any clinic or publication. Seeded: the same seed gives
the same courses everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

Kind = Literal["improving", "typical", "deteriorating"]


@dataclass(frozen=True)
class SimulationConfig:
    weeks: int = 9
    baseline_low: int = 10
    baseline_high: int = 22
    typical_slope: float = -2.5
    improving_slope: float = -5.0
    deteriorating_slope: float = 2.5
    slope_sd: float = 0.8
    noise: float = 1.8
    maximum: int = 24


@dataclass(frozen=True)
class SimulatedCourse:
    external_id: str
    kind: Kind
    totals: tuple[int, ...]
    start: datetime

    def measured_at(self, index: int) -> datetime:
        return self.start + timedelta(weeks=index)


def simulate(
    counts: dict[Kind, int], *, seed: int, start: datetime, prefix: str, config: SimulationConfig | None = None
) -> list[SimulatedCourse]:
    """``counts`` courses of each kind, starting a day apart from ``start``; ids ``<prefix>-<kind>-<n>``."""
    c = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    slopes = {"improving": c.improving_slope, "typical": c.typical_slope, "deteriorating": c.deteriorating_slope}
    courses: list[SimulatedCourse] = []
    for kind, count in counts.items():
        for n in range(count):
            baseline = int(rng.integers(c.baseline_low, c.baseline_high + 1))
            slope = rng.normal(slopes[kind], c.slope_sd)
            totals = [baseline]
            for week in range(1, c.weeks + 1):
                latent = baseline + slope * math.log1p(week) + rng.normal(0.0, c.noise)
                totals.append(int(min(c.maximum, max(0, round(latent)))))
            offset = timedelta(days=len(courses))
            courses.append(SimulatedCourse(f"{prefix}-{kind}-{n}", kind, tuple(totals), start + offset))
    return courses
