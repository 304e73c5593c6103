"""A page of measurements is answered from plain values (``read_values``), with no model per row: its JSON must be
the ``Page[MeasurementRead]`` model's, byte for byte, whatever was stored (Hypothesis): every shipped instrument with
its real scores, flags and warnings, odd floats, nulls, microseconds and time zones, an instrument no longer known, a
driver's own UUID type.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.pagination import PageParams
from app.core.responses import json_response, values_json
from app.instruments.service import stored_scores, stored_warnings
from app.measurements import service
from app.measurements.schemas import Source
from app.scoring import SCORER_VERSION
from app.scoring.engine import score
from tests.scoring.support import INSTRUMENT_IDS, definition, registry
from tests.scoring.test_properties import answer_sets


class DriverUUID(uuid.UUID):
    """A database driver's own UUID type (asyncpg's)."""


StoredRow = cast(Any, namedtuple("StoredRow", service.READ_COLUMNS))

ODD_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.1, 1e16, 1e-7, 2.5e-5, 1e21, 1e22, -0.0, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 12.0]
)
TIMES = st.builds(
    lambda when, zone: when.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([UTC, ZoneInfo("UTC"), timezone(timedelta(0)), timezone(timedelta(hours=-5, minutes=-30))]),
)
STORED_INTEGERS = st.integers(-(2**63), 2**64 - 1)
"""JSON columns are decoded by orjson, which decodes a larger integer as a float."""
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@st.composite
def stored_rows(draw: st.DrawFn) -> Any:
    """A stored current version as ``list_current`` reads it: answers scored by the real scorer, then the stored
    values varied (an odd float, an integer or null in place of a score's value)."""
    instrument_id = draw(st.sampled_from(INSTRUMENT_IDS))
    result = score(definition(instrument_id), draw(answer_sets(definition(instrument_id))))
    scores = stored_scores(result)
    for key in draw(st.sets(st.sampled_from(sorted(scores)))):
        scores[key]["value"] = draw(ODD_FLOATS | st.integers(-1000, 1000) | st.none() | st.booleans())
    warnings = stored_warnings(result) + draw(
        st.lists(
            st.fixed_dictionaries(
                {"code": TEXT, "message": TEXT},
                optional={"details": st.dictionaries(TEXT, TEXT | ODD_FLOATS | STORED_INTEGERS)},
            ),
            max_size=2,
        )
    )
    return StoredRow(
        measurement_id=draw(st.sampled_from([uuid.UUID, DriverUUID]))(int=draw(st.integers(0, 2**128 - 1))),
        version=draw(st.integers(1, 2**40)),
        is_current=draw(st.booleans()),
        patient_id=uuid.uuid4(),
        session_id=draw(st.none() | st.uuids() | st.uuids().map(lambda found: DriverUUID(int=found.int))),
        instrument_id=draw(st.sampled_from([instrument_id, "retired_scale"])),
        definition_version=result.version,
        scorer_version=SCORER_VERSION,
        measured_at=draw(TIMES),
        items=draw(answer_sets(definition(instrument_id))),
        complete=result.complete,
        missing_items=list(result.missing_items),
        scores=scores,
        flags=list(result.flags) + draw(st.lists(TEXT, max_size=2)),
        warnings=warnings,
        declared_total=draw(st.none() | ODD_FLOATS | st.integers(0, 100)),
        source=draw(st.sampled_from([source.value for source in Source])),
        amendment_reason=draw(st.none() | TEXT),
        created_at=draw(TIMES),
    )


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(rows=st.lists(stored_rows(), max_size=4), limit=st.integers(1, 4), offset=st.integers(0, 10_000_000))
def test_a_page_of_plain_values_is_the_models_json_byte_for_byte(rows: list[Any], limit: int, offset: int) -> None:
    page = PageParams(limit=limit, offset=offset)
    shipped = registry()
    model = page.page(rows, lambda row: service.to_read(row, shipped))
    assert values_json(page.page_values(rows, lambda row: service.read_values(row, shipped))) == bytes(
        json_response(model).body
    )
