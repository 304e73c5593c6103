"""A large Bundle's responses are validated in worker processes, with exactly the verdicts of the request's thread;
the workers end with the server that started them."""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import subprocess
import sys
import time
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


def gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by whoever adopted it counts: it runs nothing and holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until_gone(pids: list[int]) -> list[int]:
    """The pids still running after a bound that is there only so that a regression fails instead of hanging."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if not gone(pid)]


def test_closing_the_pool_stops_its_workers_before_it_returns(pool: ValidationPool) -> None:
    before = set(multiprocessing.active_children())
    list(pool.issues_of(responses(), "QuestionnaireResponse"))
    workers = set(multiprocessing.active_children()) - before
    assert workers

    pool.close()

    assert not [worker for worker in workers if worker.is_alive()]


KILLED_SERVER = """
import glob, os, signal
from app.fhir import validation_pool
validation_pool.MIN_RESOURCES = validation_pool.CHUNK = 1
pool = validation_pool.ValidationPool(2)
list(pool.issues_of([{"resourceType": "QuestionnaireResponse", "status": "completed"}] * 4, "QuestionnaireResponse"))
def parent(stat):
    try:
        with open(stat) as lines:
            return int(lines.read().rsplit(")", 1)[1].split()[1])
    except OSError:  # exited meanwhile
        return 0
children = [stat.split("/")[2] for stat in glob.glob("/proc/[0-9]*/stat") if parent(stat) == os.getpid()]
print(" ".join(children), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_workers_of_a_server_killed_outright_exit_on_their_own() -> None:
    # the workers inherit the server's output, so read its line rather than wait for the output to close
    with subprocess.Popen([sys.executable, "-c", KILLED_SERVER], stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        workers = [int(pid) for pid in server.stdout.readline().split()]
        assert server.wait(timeout=120) == -signal.SIGKILL
    assert len(workers) == 3  # both workers and multiprocessing's resource tracker
    assert wait_until_gone(workers) == []
