"""The synthetic-cohort generator of change-analytics §5, and its mapping onto real instruments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from app.instruments.registry import InstrumentRegistry, load_registry
from app.research.generator import CohortConfig, generate_latent
from app.research.instrument_map import DISPLAY_MAPS, answers_for, target_score
from app.research.synthetic import measurement_records, start_ending_before
from app.scoring.engine import score
from tests.conftest import SCALES_DIR


@pytest.fixture(scope="module")
def registry() -> InstrumentRegistry:
    return load_registry(SCALES_DIR)


def test_a_cohort_has_one_row_per_patient_week_and_the_same_seed_gives_the_same_cohort() -> None:
    config = CohortConfig(patients=12, weeks=5)

    first = generate_latent(config, seed=3)
    again = generate_latent(config, seed=3)
    other = generate_latent(config, seed=4)

    assert list(first.columns) == ["patient", "week", "D", "F", "S"]
    assert len(first) == 12 * 5
    assert sorted(set(first["patient"])) == list(range(1, 13))
    assert sorted(set(first["week"])) == [0, 1, 2, 3, 4]
    assert first.equals(again)
    assert not first.equals(other)


def test_the_default_configuration_is_config_a() -> None:
    config = CohortConfig()

    assert (config.patients, config.weeks) == (250, 24)
    assert (config.rho_d, config.rho_f, config.rho_s) == (0.3, 0.3, 0.3)
    assert config.known_effects() == {"F->D": 0.3, "S->D": 0.0, "D->S": -0.2}
    assert (config.delta_df, config.tau, config.measurement_error, config.missing) == (0.0, 0.0, 0.0, 0.0)


def test_between_person_intercepts_and_slopes_have_the_specified_moments() -> None:
    # Noise-free within part (no innovations is impossible, so use many patients and two weeks): the week-0 mean of
    # each construct is 0 (intercept mean) and its week-to-week mean change is the slope mean μ_β = (−.10, −.08, .06).
    latent = generate_latent(CohortConfig(patients=20_000, weeks=2), seed=11)
    week0 = latent[latent["week"] == 0].set_index("patient")
    week1 = latent[latent["week"] == 1].set_index("patient")
    change = (week1[["D", "F", "S"]] - week0[["D", "F", "S"]]).mean()

    assert np.allclose(week0[["D", "F", "S"]].mean(), [0.0, 0.0, 0.0], atol=0.04)
    assert np.allclose(change, [-0.10, -0.08, 0.06], atol=0.03)
    # Week-0 SD: intercept SD 1.5 and stationary within-person SD (≈ 1.05–1.1, §5.3): √(1.5² + 1.1²) ≈ 1.86.
    assert 1.75 < float(week0["D"].std()) < 1.95


def test_mcar_drops_about_the_requested_share_of_patient_weeks() -> None:
    latent = generate_latent(CohortConfig(patients=400, weeks=25, missing=0.15), seed=5)

    # 400 × 25 = 10,000 patient-weeks, 15 % dropped: about 8,500 kept (binomial SD ≈ 36).
    assert 8_350 < len(latent) < 8_650


def test_an_unstable_or_impossible_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="not stable"):
        CohortConfig(rho_d=0.95, gamma_fd=0.9, delta_df=0.9)
    with pytest.raises(ValueError, match="probability"):
        CohortConfig(missing=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        CohortConfig(weeks=0)


def test_the_phq9_display_map_is_the_one_of_section_5_2(registry: InstrumentRegistry) -> None:
    phq9 = registry.get("phq9")
    display = DISPLAY_MAPS[0]

    # clip(round(16 + 2.5·Y), 0, 27): Y = 0.3 → 16.75 → 17; Y = −7 → −1.5 → 0; Y = 5 → 28.5 → 27.
    assert [target_score(phq9, display, y) for y in (0.3, -7.0, 5.0)] == [17, 0, 27]


def test_mapped_answers_are_valid_and_score_exactly_to_the_target(registry: InstrumentRegistry) -> None:
    for display in DISPLAY_MAPS:
        definition = registry.get(display.instrument)
        for latent in np.linspace(-12, 12, 241):
            for rotate in range(3):
                answers = answers_for(definition, display, float(latent), rotate=rotate)
                result = score(definition, answers)  # raises on any answer outside an item's options
                target = target_score(definition, display, float(latent))
                assert result.scores[display.score].value == pytest.approx(target), (display.instrument, latent)


def test_the_scs_sf_map_answers_reverse_keyed_items_reversed(registry: InstrumentRegistry) -> None:
    definition = registry.get("scs_sf")
    display = next(d for d in DISPLAY_MAPS if d.instrument == "scs_sf")

    # Y = 0: mean 3.0, keyed sum 36 = 12 × 3, every keyed score 3; reversed items answer 1 + 5 − 3 = 3 as well.
    assert set(answers_for(definition, display, 0.0).values()) == {3}
    # Y = 5: 3 + 0.4·5 = 5.0, every keyed score 5: positive items answer 5, reversed items (1, 4, 8, 9, 11, 12) 1.
    answers = answers_for(definition, display, 5.0)
    assert {number for number, answer in answers.items() if answer == 1} == {"1", "4", "8", "9", "11", "12"}


def test_records_number_sessions_over_observed_weeks(registry: InstrumentRegistry) -> None:
    latent = generate_latent(CohortConfig(patients=1, weeks=6), seed=2)
    latent = latent[latent["week"].isin([0, 1, 4])]

    records = list(measurement_records(latent, registry, seed=2))

    assert [record["instrument"] for record in records[:3]] == ["phq9", "fcs_from_others", "scs_sf"]
    assert {record["external_id"] for record in records} == {"synthetic-2-0001"}
    # Weeks 0, 1 and 4 are sessions 1, 2 and 3, answered on 5, 12 January and 2 February 2026.
    assert sorted({(r["session_number"], r["measured_at"]) for r in records}) == [
        (1, "2026-01-05T09:00:00+00:00"),
        (2, "2026-01-12T09:00:00+00:00"),
        (3, "2026-02-02T09:00:00+00:00"),
    ]


EAST = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("now", "weeks", "week_zero"),
    [
        (datetime(2026, 12, 4, 21, 0, tzinfo=UTC), 24, datetime(2026, 6, 15, 9, 0, tzinfo=UTC)),
        (datetime(2026, 12, 7, 0, 30, tzinfo=UTC), 1, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        (
            datetime(2026, 12, 7, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            1,
            datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        ),
    ],
)
def test_a_default_cohort_ends_the_week_before_now(now: datetime, weeks: int, week_zero: datetime) -> None:
    """Every generated measurement lies in the past, so a cohort of any length imports (no time after now)."""
    start = start_ending_before(now, weeks)

    assert start == week_zero
    assert start.weekday() == 0
    assert start + timedelta(weeks=weeks - 1) < now  # the last week's measurements
