"""A JSON body naming a key twice is refused, never read as its last value; echoed input is cut short."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.json_body import DuplicateKey, loads_unique
from app.core.problems import ECHOED_CHARACTERS
from tests.conftest import ClinicKeys


def test_a_body_naming_a_key_twice_is_refused_naming_the_key(client: TestClient, clinic: ClinicKeys) -> None:
    body = b'{"external_id": "first", "external_id": "second"}'

    refused = client.post(
        "/v1/patients", content=body, headers={**clinic.headers(), "Content-Type": "application/json"}
    )
    listed = client.get("/v1/patients", params={"external_id": "second"}, headers=clinic.headers())

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    [error] = refused.json()["errors"]
    assert error["field"] == "body"
    assert "'external_id' appears twice" in error["detail"]
    assert listed.json().get("items", []) == []


def test_a_key_named_twice_deep_inside_is_found() -> None:
    with pytest.raises(DuplicateKey) as refused:
        loads_unique('{"items": [{"1": 0, "2": 1, "1": 3}]}')

    assert refused.value.key == "1"
    assert loads_unique('{"a": {"a": 1}, "b": [{"a": 2}]}') == {"a": {"a": 1}, "b": [{"a": 2}]}


def test_an_echoed_value_is_cut_short(client: TestClient, clinic: ClinicKeys) -> None:
    refused = client.post("/v1/patients", json={"external_id": "x" * 1_000_000}, headers=clinic.headers())

    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["value"] == "x" * ECHOED_CHARACTERS + "…"
    assert len(refused.content) < 2_000
