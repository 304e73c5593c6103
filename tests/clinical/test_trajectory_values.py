"""A trajectory is answered from plain values (``trajectory_values``), with no model per point: its JSON must be the
``TrajectoryRead`` model's, byte for byte, for any series (Hypothesis): every shipped instrument's scores and bands,
odd floats, integers and nulls as values, microseconds and time zones, points of other version families."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.clinical.points import Point, Series, in_family
from app.clinical.schemas import BandRead, TrajectoryPoint, TrajectoryRead
from app.clinical.service import trajectory_values
from app.core.responses import json_response, values_json
from tests.scoring.support import INSTRUMENT_IDS, definition

TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
ODD_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.1, 1e16, 1e-7, 2.5e-5, 1e21, -0.0, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 12.0]
)
TIMES = st.builds(
    lambda when, zone: when.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([UTC, ZoneInfo("UTC"), timezone(timedelta(0)), timezone(timedelta(hours=9, minutes=30))]),
)
POINTS = st.builds(
    Point,
    measurement_id=st.uuids(),
    version=st.integers(1, 2**40),
    instrument_version=st.sampled_from(["1.0.0", "1.2.0", "2.0.0"]),
    measured_at=TIMES,
    session_id=st.none() | st.uuids(),
    session_number=st.none() | st.integers(0, 10_000),
    value=st.none() | ODD_FLOATS | st.integers(-1000, 1000) | st.booleans(),
    band=st.none() | TEXT,
    prorated=st.booleans(),
    flags=st.lists(TEXT, max_size=3).map(tuple),
)


@st.composite
def series(draw: st.DrawFn) -> Series:
    defn = definition(draw(st.sampled_from(INSTRUMENT_IDS)))
    spec = draw(st.sampled_from(defn.scores))
    return in_family(defn, spec, draw(st.lists(POINTS, max_size=6)))


def trajectory_model(patient_id: uuid.UUID, data: Series) -> TrajectoryRead:
    """The model the route answered with before, built and validated field by field."""
    first = data.points[0].measured_at if data.points else None
    return TrajectoryRead(
        patient_id=patient_id,
        instrument=data.definition.id,
        score=data.score.key,
        label=data.score.label,
        direction=data.score.direction.value,
        minimum=data.score.minimum,
        maximum=data.score.maximum,
        bands=[BandRead.model_validate(band.model_dump()) for band in data.score.bands],
        version_family=data.family,
        points=[
            TrajectoryPoint(
                measurement_id=point.measurement_id,
                version=point.version,
                instrument_version=point.instrument_version,
                measured_at=point.measured_at,
                session_id=point.session_id,
                session_number=point.session_number,
                days_since_first=(point.measured_at - first).total_seconds() / 86400 if first else 0.0,
                value=point.value,
                band=point.band,
                prorated=point.prorated,
                flags=list(point.flags),
            )
            for point in data.points
        ],
        points_in_other_version_families=data.other_family_points,
    )


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(data=series(), patient_id=st.uuids())
def test_a_trajectorys_plain_values_are_the_models_json_byte_for_byte(data: Series, patient_id: uuid.UUID) -> None:
    assert values_json(trajectory_values(patient_id, data)) == bytes(
        json_response(trajectory_model(patient_id, data)).body
    )
