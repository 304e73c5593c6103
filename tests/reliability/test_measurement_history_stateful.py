"""Hypothesis drives create / amend / history / idempotent replay through the API in random orders, against a model of
what must be stored: history length = amendments + 1, the current version is the last one, and a replay returns the
identical body and stores nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import func, select

from app.core.state import state_of
from app.measurements.models import Measurement
from tests.conftest import ClinicKeys

ANSWERS = st.fixed_dictionaries({str(n): st.one_of(st.none(), st.integers(0, 3)) for n in range(1, 10)})
"""PHQ-9 answers: every item present, some unanswered (null)."""
REASONS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
EXAMPLES = 25
STEPS = 15


@dataclass(frozen=True)
class Write:
    """A write that stored something: what was sent, and the first answer (what a replay must return)."""

    url: str
    key: str
    body: dict[str, Any]
    first_answer: str

    def altered(self) -> dict[str, Any]:
        """The same request with one field changed: a different request under the same Idempotency-Key."""
        if "reason" in self.body:
            return {**self.body, "reason": self.body["reason"] + " (again)"}
        return {**self.body, "measured_at": "2025-01-01T00:00:00Z"}


class MeasurementHistory(RuleBasedStateMachine):
    app: ClassVar[FastAPI]
    client: ClassVar[TestClient]
    clinic: ClassVar[ClinicKeys]
    tally: ClassVar[Counter[str]]

    measurements = Bundle("measurements")

    def __init__(self) -> None:
        super().__init__()
        patient = self.client.post("/v1/patients", json={}, headers=self.clinic.headers())
        self.patient_id = patient.json()["id"]
        self.base = f"/v1/patients/{self.patient_id}/measurements"
        self.versions: dict[str, list[dict[str, Any]]] = {}
        """Measurement id → each version's body as first returned, oldest first."""
        self.writes: list[Write] = []

    def post(self, url: str, body: dict[str, Any], key: str) -> Any:
        return self.client.post(url, json=body, headers=self.clinic.headers(extra={"Idempotency-Key": key}))

    @rule(target=measurements, items=ANSWERS, minute=st.integers(0, 100_000))
    def create(self, items: dict[str, int | None], minute: int) -> str:
        self.tally["create"] += 1
        body = {"instrument": "phq9", "items": items, "measured_at": "2026-01-" + _clock(minute)}
        key = uuid.uuid4().hex
        response = self.post(self.base, body, key)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert (stored["version"], stored["current"], stored["items"]) == (1, True, items)
        self.versions[stored["id"]] = [stored]
        self.writes.append(Write(self.base, key, body, response.text))
        return str(stored["id"])

    @rule(measurement=measurements, items=ANSWERS, reason=REASONS, in_range=st.sampled_from([True, True, True, False]))
    def amend(self, measurement: str, items: dict[str, int | None], reason: str, in_range: bool) -> None:
        url = f"{self.base}/{measurement}/amend"
        if not in_range:  # item 4 answered 7 where PHQ-9 allows 0–3: refused, and nothing stored
            self.tally["amendment refused"] += 1
            response = self.post(url, {"items": {**items, "4": 7}, "reason": reason}, uuid.uuid4().hex)
            assert response.status_code == 422
            assert response.headers["content-type"] == "application/problem+json"
            return
        self.tally["amend"] += 1
        body = {"items": items, "reason": reason}
        key = uuid.uuid4().hex
        response = self.post(url, body, key)
        assert response.status_code == 201, response.text
        amended = response.json()
        previous = self.versions[measurement]
        assert (amended["id"], amended["version"], amended["current"]) == (measurement, len(previous) + 1, True)
        assert (amended["items"], amended["amendment_reason"]) == (items, reason)
        assert amended["measured_at"] == previous[0]["measured_at"]  # kept from the version it supersedes
        previous.append(amended)
        self.writes.append(Write(url, key, body, response.text))

    @precondition(lambda self: bool(self.writes))
    @rule(data=st.data(), same_request=st.sampled_from([True, True, True, False]))
    def retry(self, data: st.DataObject, same_request: bool) -> None:
        """An app retries a write: the same request replays the first answer; another one under its key is refused."""
        write = data.draw(st.sampled_from(self.writes))
        if same_request:
            self.tally["replay"] += 1
            response = self.post(write.url, write.body, write.key)
            assert response.status_code == 201
            assert response.headers["idempotent-replayed"] == "true"
            assert response.text == write.first_answer
        else:
            self.tally["key reused"] += 1
            response = self.post(write.url, write.altered(), write.key)
            assert response.status_code == 422
            assert response.json()["type"] == "/problems/idempotency-key-reused"

    @rule(measurement=measurements)
    def read_history(self, measurement: str) -> None:
        self.tally["history"] += 1
        history = self.client.get(f"{self.base}/{measurement}/history", headers=self.clinic.headers()).json()
        current = self.client.get(f"{self.base}/{measurement}", headers=self.clinic.headers()).json()
        versions = self.versions[measurement]
        assert len(history) == len(versions)  # one version per amendment, plus the first
        last = len(versions) - 1
        assert history == [{**version, "current": index == last} for index, version in enumerate(versions)]
        assert current == history[-1]

    @invariant()
    def every_stored_row_is_a_version_the_model_knows(self) -> None:
        query = (
            select(func.count()).select_from(Measurement).where(Measurement.patient_id == uuid.UUID(self.patient_id))
        )
        with state_of(self.app).read_sessions() as db:
            rows = db.scalar(query)
        assert rows == sum(len(versions) for versions in self.versions.values())

    @invariant()
    def the_list_shows_each_measurement_once_at_its_last_version(self) -> None:
        listed = self.client.get(self.base, params={"limit": 500}, headers=self.clinic.headers()).json()["items"]
        assert sorted((m["id"], m["version"]) for m in listed) == sorted(
            (measurement, len(versions)) for measurement, versions in self.versions.items()
        )


def _clock(minute: int) -> str:
    """A time on 1 January 2026 or the days after: ``minute`` minutes past midnight."""
    day, rest = divmod(minute, 24 * 60)
    return f"{day % 28 + 1:02}T{rest // 60:02}:{rest % 60:02}:00Z"


def test_create_amend_history_and_replay_keep_every_version(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, figures: list[str], backend: str
) -> None:
    class Machine(MeasurementHistory):
        pass

    Machine.app, Machine.client, Machine.clinic, Machine.tally = app, client, clinic, Counter()
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    figures.append(
        f"[{backend}] stateful create/amend/history/replay: {EXAMPLES} runs of up to {STEPS} steps, "
        f"{Machine.tally.total()} steps ({', '.join(f'{name} {n}' for name, n in sorted(Machine.tally.items()))}), "
        "invariants checked after each"
    )
