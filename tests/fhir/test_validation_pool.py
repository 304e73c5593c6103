"""A large Bundle's responses are validated in worker processes, with exactly the verdicts of the request's thread."""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.state import state_of
from app.fhir import validation_pool
from app.fhir.validation import structural_issues
from app.fhir.validation_pool import ValidationPool
from tests.conftest import ClinicKeys
from tests.fhir.conftest import US_CORE_QUESTIONNAIRE, fixture, register, send


def responses() -> list[dict[str, Any]]:
    """Valid and structurally invalid QuestionnaireResponses (an unknown element, a wrong JSON type)."""
    valid = fixture("qr-phq9-uscore.json")
    unknown = {**copy.deepcopy(valid), "colour": "blue"}
    wrong_type = {**copy.deepcopy(valid), "item": "not a list"}
    return [valid, unknown, valid, wrong_type, valid]


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[ValidationPool]:
    monkeypatch.setattr(validation_pool, "MIN_RESOURCES", 2)
    monkeypatch.setattr(validation_pool, "CHUNK", 2)
    started = ValidationPool(1)
    yield started
    started.close()


def test_the_workers_give_the_verdicts_of_the_requests_thread_in_order(pool: ValidationPool) -> None:
    resources = responses()

    verdicts = list(pool.issues_of(resources, "QuestionnaireResponse"))

    assert verdicts == [structural_issues(resource, "QuestionnaireResponse") for resource in resources]
    assert [bool(issues) for issues in verdicts] == [False, True, False, True, False]


def test_small_batches_and_zero_processes_validate_in_the_requests_thread() -> None:
    resources = responses()
    expected = [structural_issues(resource, "QuestionnaireResponse") for resource in resources]

    assert list(ValidationPool(0).issues_of(resources, "QuestionnaireResponse")) == expected
    assert list(ValidationPool(1).issues_of(resources[:1], "QuestionnaireResponse")) == expected[:1]


def test_a_bundle_validated_ahead_answers_as_one_validated_entry_by_entry(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    entries = [
        {
            "resource": {**resource, "subject": {"reference": f"Patient/{patient_id}"}},
            "request": {"method": "POST", "url": "QuestionnaireResponse"},
        }
        for resource in responses()
    ]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}

    monkeypatch.setattr(state_of(app).part(ValidationPool), "processes", 0)
    inline = send(client, "POST", "/fhir", clinic, bundle).json()["entry"]
    monkeypatch.setattr(state_of(app).part(ValidationPool), "processes", 1)
    monkeypatch.setattr(validation_pool, "MIN_RESOURCES", 2)
    ahead = send(client, "POST", "/fhir", clinic, bundle).json()["entry"]

    def verdict(entry: dict[str, Any]) -> tuple[str, Any]:
        return entry["response"]["status"], entry["response"].get("outcome")

    assert [verdict(entry) for entry in ahead] == [verdict(entry) for entry in inline]
    assert [verdict(entry)[0] for entry in ahead] == ["201 Created", "400 Bad Request"] * 2 + ["201 Created"]


def test_a_killed_worker_costs_no_verdict_and_the_next_bundle_gets_a_new_pool(pool: ValidationPool) -> None:
    resources = responses()
    expected = [structural_issues(resource, "QuestionnaireResponse") for resource in resources]
    before = set(multiprocessing.active_children())
    assert list(pool.issues_of(resources, "QuestionnaireResponse")) == expected
    workers = set(multiprocessing.active_children()) - before
    assert workers

    for worker in workers:  # as the kernel's out-of-memory killer would
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=10)

    assert list(pool.issues_of(resources, "QuestionnaireResponse")) == expected
    assert list(pool.issues_of(resources, "QuestionnaireResponse")) == expected
    assert set(multiprocessing.active_children()) - before - workers  # a new worker serves again


def test_a_worker_killed_in_the_middle_of_a_bundle_costs_no_verdict(pool: ValidationPool) -> None:
    resources = responses() * 40
    expected = [structural_issues(resource, "QuestionnaireResponse") for resource in resources]
    before = set(multiprocessing.active_children())
    verdicts = pool.issues_of(resources, "QuestionnaireResponse")
    first = next(verdicts)  # every chunk is handed over; the worker is busy with the next ones

    for worker in set(multiprocessing.active_children()) - before:
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=10)

    assert [first, *verdicts] == expected
