"""A large Bundle's responses are validated in worker processes, with exactly the verdicts of the request's thread;
the workers also read and score the valid ones against the forms resolved ahead, as the request would."""

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
from app.fhir import questionnaire_responses, validation_pool
from app.fhir.codes import QUESTIONNAIRE_BASE
from app.fhir.form_resolution import ResolvedForm
from app.fhir.instrument_questionnaires import builtin_form
from app.fhir.response_answers import score_response
from app.fhir.validation import structural_issues
from app.fhir.validation_pool import ValidationPool, Verdict
from app.instruments.registry import load_registry
from tests.conftest import SCALES_DIR, ClinicKeys
from tests.fhir.conftest import US_CORE_QUESTIONNAIRE, fixture, register, send

RESPONSE = "QuestionnaireResponse"
OUR_PHQ9 = f"{QUESTIONNAIRE_BASE}:phq9"
LOINC_ANSWERS = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}


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

    verdicts = [verdict.issues for verdict in pool.verdicts(resources, RESPONSE)]

    assert verdicts == [structural_issues(resource, RESPONSE) for resource in resources]
    assert [bool(issues) for issues in verdicts] == [False, True, False, True, False]


def test_small_batches_and_zero_processes_validate_in_the_requests_thread() -> None:
    resources = responses()
    expected = [Verdict(structural_issues(resource, RESPONSE)) for resource in resources]
    forms = {OUR_PHQ9: phq9_form()}

    assert list(ValidationPool(0).verdicts(resources, RESPONSE, forms)) == expected
    assert list(ValidationPool(1).verdicts(resources[:1], RESPONSE, forms)) == expected[:1]


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
    expected = [Verdict(structural_issues(resource, RESPONSE)) for resource in resources]
    before = set(multiprocessing.active_children())
    assert list(pool.verdicts(resources, RESPONSE)) == expected
    workers = set(multiprocessing.active_children()) - before
    assert workers

    for worker in workers:  # as the kernel's out-of-memory killer would
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=10)

    assert list(pool.verdicts(resources, RESPONSE)) == expected
    assert list(pool.verdicts(resources, RESPONSE)) == expected
    assert set(multiprocessing.active_children()) - before - workers  # a new worker serves again


def test_a_worker_killed_in_the_middle_of_a_bundle_costs_no_verdict(pool: ValidationPool) -> None:
    resources = responses() * 40
    expected = [Verdict(structural_issues(resource, RESPONSE)) for resource in resources]
    before = set(multiprocessing.active_children())
    verdicts = pool.verdicts(resources, RESPONSE)
    first = next(verdicts)  # every chunk is handed over; the worker is busy with the next ones

    for worker in set(multiprocessing.active_children()) - before:
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=10)

    assert [first, *verdicts] == expected


def phq9_form() -> ResolvedForm:
    definition = load_registry(SCALES_DIR).definitions["phq9"]
    return ResolvedForm(builtin_form(definition), definition)


def phq9_response(answers: dict[str, int], *, patient_id: str = "example", **changes: Any) -> dict[str, Any]:
    """A response to the service's own PHQ-9 (items "1" to "9" answered with their LOINC answer codes)."""
    return {
        "resourceType": RESPONSE,
        "questionnaire": OUR_PHQ9,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-11-02T09:30:00Z",
        "item": [
            {"linkId": link, "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LOINC_ANSWERS[value]}}]}
            for link, value in answers.items()
        ],
        **changes,
    }


ALL_NINE = {str(item): item % 4 for item in range(1, 10)}


def answered(patient_id: str = "example") -> list[dict[str, Any]]:
    """Responses whose answers are valid, refused by reading (an unknown code), or refused by scoring (more items
    missing than PHQ-9's rule allows), with one not valid as FHIR and one naming a form nobody has."""
    unknown_code = phq9_response(ALL_NINE, patient_id=patient_id)
    unknown_code["item"][2]["answer"][0]["valueCoding"]["code"] = "LA-nothing"
    return [
        phq9_response(ALL_NINE, patient_id=patient_id),
        unknown_code,
        phq9_response({"1": 1, "2": 2, "3": 0, "4": 1, "5": 3, "6": 0}, patient_id=patient_id),
        phq9_response({**ALL_NINE, "9": 0}, patient_id=patient_id),
        phq9_response(ALL_NINE, patient_id=patient_id, colour="blue"),
        phq9_response(ALL_NINE, patient_id=patient_id, questionnaire=f"{QUESTIONNAIRE_BASE}:nothing"),
    ]


def test_the_workers_read_and_score_each_valid_response_against_its_form_as_the_request_would(
    pool: ValidationPool,
) -> None:
    form = phq9_form()
    resources = answered()

    verdicts = list(pool.verdicts(resources, RESPONSE, {OUR_PHQ9: form}))

    assert [verdict.issues for verdict in verdicts] == [structural_issues(resource, RESPONSE) for resource in resources]
    assert verdicts[0].scored == score_response(resources[0], form.form, form.definition)
    assert verdicts[3].scored == score_response(resources[3], form.form, form.definition)
    assert verdicts[0].scored is not None
    assert verdicts[0].scored[1].scores["total"].value == 13
    # refused by reading or by scoring, not valid FHIR, or no form given: the request reads it (and refuses it) itself
    assert [verdict.scored is None for verdict in verdicts] == [False, True, False, False, True, True]
    assert verdicts[2].scored is not None
    assert verdicts[2].scored[1].scores["total"].value is None


def test_a_bundle_read_ahead_answers_and_stores_as_one_read_entry_by_entry(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def batch(minute: int) -> dict[str, Any]:
        resources = answered(patient_id)
        for offset, resource in enumerate(resources):
            resource["authored"] = f"2026-11-02T09:{minute + offset:02d}:00Z"
        entries = [{"resource": resource, "request": {"method": "POST", "url": RESPONSE}} for resource in resources]
        return {"resourceType": "Bundle", "type": "batch", "entry": entries}

    def answer(entry: dict[str, Any]) -> tuple[str, Any]:
        return entry["response"]["status"], entry["response"].get("outcome")

    monkeypatch.setattr(state_of(app).part(ValidationPool), "processes", 0)
    inline = send(client, "POST", "/fhir", clinic, batch(0)).json()["entry"]
    monkeypatch.setattr(state_of(app).part(ValidationPool), "processes", 1)
    monkeypatch.setattr(validation_pool, "MIN_RESOURCES", 2)
    read_here: list[str] = []

    def noting(qr: dict[str, Any], *args: Any) -> Any:
        read_here.append(qr["authored"])
        return score_response(qr, *args)

    monkeypatch.setattr(questionnaire_responses, "score_response", noting)
    ahead = send(client, "POST", "/fhir", clinic, batch(30)).json()["entry"]

    assert read_here == ["2026-11-02T09:31:00Z"]  # only the one the worker's reading refused is read again here
    assert [answer(entry) for entry in ahead] == [answer(entry) for entry in inline]
    created = ["201 Created", "422 Unprocessable Entity", "422 Unprocessable Entity", "201 Created"]
    assert [answer(entry)[0] for entry in ahead] == [*created, "400 Bad Request", "422 Unprocessable Entity"]
    stored = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    scores = sorted((item["measured_at"][11:], item["scores"]["total"]["value"]) for item in stored)
    assert scores == [("09:00:00Z", 13), ("09:03:00Z", 12), ("09:30:00Z", 13), ("09:33:00Z", 12)]


def test_nothing_is_read_ahead_when_the_bundle_writes_a_questionnaire(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[dict[str, Any]] = []
    verdicts = ValidationPool.verdicts

    def noting(self: ValidationPool, resources: Any, resource_type: str, forms: Any = None) -> Any:
        given.append(dict(forms or {}))
        return verdicts(self, resources, resource_type, forms)

    monkeypatch.setattr(ValidationPool, "verdicts", noting)
    monkeypatch.setattr(state_of(app).part(ValidationPool), "processes", 1)
    monkeypatch.setattr(validation_pool, "MIN_RESOURCES", 2)
    responses = [
        {"resource": resource, "request": {"method": "POST", "url": RESPONSE}}
        for resource in answered(patient_id)[:1]
        + [phq9_response(ALL_NINE, patient_id=patient_id, authored="2026-11-03")]
    ]
    form = {"resource": fixture(US_CORE_QUESTIONNAIRE), "request": {"method": "POST", "url": "Questionnaire"}}

    plain = send(client, "POST", "/fhir", clinic, {"resourceType": "Bundle", "type": "batch", "entry": responses})
    with_form = {"resourceType": "Bundle", "type": "batch", "entry": [*responses, form]}
    for entry in responses:
        entry["resource"]["authored"] = entry["resource"]["authored"].replace("2026-11", "2026-10")
    writing = send(client, "POST", "/fhir", clinic, with_form)

    assert plain.status_code == writing.status_code == 200
    assert [list(forms) for forms in given] == [[OUR_PHQ9], []]


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
    list(pool.verdicts(responses(), RESPONSE))
    workers = set(multiprocessing.active_children()) - before
    assert workers

    pool.close()

    assert not [worker for worker in workers if worker.is_alive()]


KILLED_SERVER = """
import glob, os, signal
from app.fhir import validation_pool
validation_pool.MIN_RESOURCES = validation_pool.CHUNK = 1
pool = validation_pool.ValidationPool(2)
list(pool.verdicts([{"resourceType": "QuestionnaireResponse", "status": "completed"}] * 4, "QuestionnaireResponse"))
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
