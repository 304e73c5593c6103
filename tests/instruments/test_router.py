from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.state import state_of
from app.measurements.models import Measurement
from tests.conftest import ISSUE_PHQ9, ClinicKeys


def test_scoring_returns_the_documented_shape_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys
) -> None:
    with state_of(app).read_sessions() as db:
        before = db.scalar(select(func.count()).select_from(Measurement))

    response = client.post("/v1/score/phq9", json={"items": ISSUE_PHQ9, "declared_total": 10}, headers=clinic.headers())

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"instrument", "version", "complete", "missing_items", "scores", "flags", "warnings"}
    assert body["scores"]["total"] | {"missing_items": []} == {
        "value": 10,
        "band": "moderate",
        "prorated": False,
        "missing_items": [],
        "direction": "lower_is_better",
        "minimum": 0,
        "maximum": 27,
    }
    assert body["flags"] == ["item9_positive"]
    assert body["warnings"] == []
    with state_of(app).read_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Measurement)) == before


def test_scoring_an_unknown_instrument_is_a_404(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.post("/v1/score/phq8", json={"items": {}}, headers=clinic.headers())

    assert response.status_code == 404
    assert "phq9" in response.json()["detail"]


def test_a_missing_item_9_is_flagged_never_inferred(client: TestClient, clinic: ClinicKeys) -> None:
    items = {**ISSUE_PHQ9, "9": None}

    body = client.post("/v1/score/phq9", json={"items": items}, headers=clinic.headers()).json()

    assert body["flags"] == ["item9_missing"]
    assert body["scores"]["total"]["prorated"] is True


def test_instruments_are_listed_and_served_in_full(client: TestClient, clinic: ClinicKeys) -> None:
    listing = client.get("/v1/instruments", headers=clinic.headers()).json()
    phq9 = next(entry for entry in listing if entry["id"] == "phq9")

    assert phq9["item_count"] == 10
    assert phq9["scored_item_count"] == 9
    assert phq9["version"] == "1.0.0"
    definition = client.get("/v1/instruments/phq9", headers=clinic.headers()).json()
    assert definition["items"][8]["text"].startswith("Thoughts that you would be better off dead")
    assert [option["label"] for option in definition["option_sets"]["default"]] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]
    assert client.get("/v1/instruments/nope", headers=clinic.headers()).status_code == 404
