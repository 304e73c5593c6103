"""The clinic's time zone: an IANA name in the settings, and the report's times in it with their offset."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.clinical.charts import date_ticks
from tests.clinical.conftest import phq9, seed
from tests.conftest import ClinicKeys


def test_the_time_zone_defaults_to_utc_and_takes_an_iana_name(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)
    assert client.get("/v1/clinic/settings", headers=admin).json()["timezone"] == "UTC"

    written = client.put("/v1/clinic/settings", json={"timezone": "Europe/Oslo"}, headers=admin)

    assert written.status_code == 200, written.text
    assert written.json()["timezone"] == "Europe/Oslo"
    assert client.get("/v1/clinic/settings", headers=admin).json()["timezone"] == "Europe/Oslo"


def test_an_unknown_time_zone_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient, clinic: ClinicKeys
) -> None:
    admin = clinic.headers(Role.ADMIN)
    client.put("/v1/clinic/settings", json={"timezone": "Europe/Oslo"}, headers=admin)

    for name in ("Mars/Olympus", "../../etc/passwd", "CET "):
        refused = client.put("/v1/clinic/settings", json={"timezone": name}, headers=admin)
        assert refused.status_code == 422, name
        assert refused.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in refused.json()["errors"]] == ["timezone"]
    assert client.get("/v1/clinic/settings", headers=admin).json()["timezone"] == "Europe/Oslo"


def test_the_report_shows_local_times_with_their_offset(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    client.put("/v1/clinic/settings", json={"timezone": "America/New_York"}, headers=clinic.headers(Role.ADMIN))
    # 2026-03-07 is standard time in New York (UTC-5); 2026-03-09 daylight time (UTC-4), after the 8 March change.
    seed(app, clinic, patient_id, "phq9", phq9(12), datetime(2026, 3, 7, 14, 30, tzinfo=UTC))
    seed(app, clinic, patient_id, "phq9", phq9(9), datetime(2026, 3, 9, 3, 15, tzinfo=UTC))

    html = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text

    assert "2026-03-07 09:30 -05:00" in html
    assert "2026-03-08 23:15 -04:00" in html  # the local day before the UTC one
    assert "Times are in America/New_York" in html
    assert "from 2026-03-07 to 2026-03-08" in html
    assert "Date (America/New_York)" in html
    assert "lower is better" in html


def test_date_ticks_fall_on_local_midnights_and_stay_few() -> None:
    first = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    short = date_ticks(first, -2.0, 30.0, oslo)
    long = date_ticks(first, -20.0, 400.0, oslo)

    assert [label for _x, label in short] == [
        "05 Jan 2026",
        "12 Jan 2026",
        "19 Jan 2026",
        "26 Jan 2026",
        "02 Feb 2026",
    ]
    # 05 Jan 00:00 in Oslo (UTC+1) is 04 Jan 23:00 UTC: 10 hours before the first measurement.
    assert abs(short[0][0] - (-10 / 24)) < 1e-9
    assert 3 <= len(long) <= 6
