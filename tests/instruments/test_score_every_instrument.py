"""POST /v1/score/{id} serves every instrument over HTTP (the arithmetic itself is tested in tests/scoring)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClinicKeys


@pytest.mark.parametrize(
    ("instrument", "items", "expected"),
    [
        # GAD-7: 7 items × 2 = 14 → moderate (10–14).
        ("gad7", {str(n): 2 for n in range(1, 8)}, {"total": (14, "moderate")}),
        # SCS-SF: every answer 3; reversed 6 − 3 = 3 too, so every mean is 3.0 → moderate.
        ("scs_sf", {str(n): 3 for n in range(1, 13)}, {"total": (3.0, "moderate"), "self_kindness": (3.0, None)}),
        # FCS from others: 13 items × 4 = 52, the maximum; no bands.
        ("fcs_from_others", {str(n): 4 for n in range(1, 14)}, {"total": (52, None)}),
        # FSCRS: every item 1 → inadequate 9, hated 5, reassured 8, self-criticism 9 + 5 = 14.
        (
            "fscrs",
            {str(n): 1 for n in range(1, 23)},
            {
                "inadequate_self": (9, None),
                "hated_self": (5, None),
                "reassured_self": (8, None),
                "self_criticism": (14, None),
            },
        ),
        # BDI-II: 19 items × 1 + item 16 "2a" (2) + item 18 "1b" (1) = 22 → moderate (20–28).
        ("bdi2", {**{str(n): 1 for n in range(1, 22)}, "16": "2a", "18": "1b"}, {"total": (22, "moderate")}),
    ],
)
def test_each_instrument_scores_over_http(
    client: TestClient,
    clinic: ClinicKeys,
    instrument: str,
    items: dict[str, object],
    expected: dict[str, tuple[float, str | None]],
) -> None:
    response = client.post(f"/v1/score/{instrument}", json={"items": items}, headers=clinic.headers())

    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    assert {key: (scores[key]["value"], scores[key]["band"]) for key in expected} == expected


def test_the_fscrs_self_harm_item_raises_its_flag(client: TestClient, clinic: ClinicKeys) -> None:
    items = {str(n): 0 for n in range(1, 23)} | {"9": 2}

    body = client.post("/v1/score/fscrs", json={"items": items}, headers=clinic.headers()).json()

    assert body["flags"] == ["item9_endorsed"]


def test_a_letter_code_outside_items_16_and_18_is_refused_by_name(client: TestClient, clinic: ClinicKeys) -> None:
    items = {str(n): 0 for n in range(1, 22)} | {"4": "2a"}

    response = client.post("/v1/score/bdi2", json={"items": items}, headers=clinic.headers())

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["allowed"]) == ("items.4", [0, 1, 2, 3])
