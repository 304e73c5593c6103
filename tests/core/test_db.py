from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from app.core.db import UTCDateTime, create_db_engine
from tests.conftest import make_settings


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: object) -> None:
    engine = create_db_engine(make_settings(f"sqlite:///{tmp_path}/x.db"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_datetimes_are_stored_in_utc_and_read_back_aware() -> None:
    column = UTCDateTime()
    oslo = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

    stored = column.process_bind_param(oslo, None)
    assert stored == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert column.process_result_value(datetime(2026, 6, 1, 10, 0), None) == stored
    assert column.process_bind_param(None, None) is None
    assert column.process_result_value(None, None) is None
    with pytest.raises(ValueError, match="time zone"):
        column.process_bind_param(datetime(2026, 6, 1, 12, 0), None)
