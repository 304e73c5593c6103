"""Every claim of ``/fhir/metadata`` holds, and nothing is claimed that no row here proves.

The statement is read as a set of claims: each resource's interactions, search parameters, versioning and
conditional/update-create flags, and the system interactions. ``ROWS`` maps each claim to a request that exercises it
and what the answer must be; a claim without a row fails, and so does a row whose claim is not made. A helper adding a
claim (vread, ``_history``, ``$extract``, SMART security) adds its row here. Interactions not claimed are refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from app.auth.permissions import Role
from tests.auth.smart import access_token, bearer
from tests.auth.smart import register as register_smart_client
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.fhir.conftest import FHIR_JSON, SDC_QUESTIONNAIRE, fixture, send
from tests.fhir.test_versioning import LA, phq9, put, read_ok
from tests.security.openapi_routes import PHQ9_RESPONSE, example_schedule

Claim = tuple[str, str, str]
"""(resource type or ``system``, what: ``interaction``, ``search``, ``versioning`` or a flag, the code/name/value)."""
BASE = "http://testserver/fhir"
PHQ9_URL = "urn:compassion-outcomes:questionnaire:phq9"
PHQ9_TOTAL = "http://loinc.org|44261-6"
PHQ9_PANEL = "http://loinc.org|44249-1"
QR_IDENTIFIER = ("urn:test:responses", "qr-1")
PATIENT_IDENTIFIER = ("urn:test:mrn", "mrn-1")


@dataclass
class Stock:
    """One clinic's records: patient P with PHQ-9s measured in April, June and on 5 and 20 November 2026 (the last
    from a FHIR response), a weekly schedule due now; patient Q with nothing."""

    client: TestClient
    clinic: ClinicKeys
    patient: str
    other: str
    response: str

    def get(self, path: str, **params: str) -> Response:
        return self.client.get(path, params=params, headers=self.clinic.headers(Role.ADMIN))

    def found(self, path: str, **params: str) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        bundle: dict[str, Any] = response.json()
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
        matches = [entry for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]
        assert all(
            entry["fullUrl"] == f"{BASE}/{r['resourceType']}/{r['id']}"
            for entry in matches
            for r in [entry["resource"]]
        )
        return bundle

    def ids(self, path: str, **params: str) -> list[str]:
        bundle = self.found(path, **params)
        return [entry["resource"]["id"] for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]

    def send(self, method: str, path: str, resource: Any, **extra: str) -> Response:
        return send(
            self.client,
            method,
            path,
            self.clinic,
            resource,
            role=Role.ADMIN,
            if_none_exist=extra.get("if_none_exist"),
        )


@pytest.fixture
def stock(client: TestClient, clinic: ClinicKeys) -> Stock:
    identifier = {"system": PATIENT_IDENTIFIER[0], "value": PATIENT_IDENTIFIER[1]}
    created = send(client, "POST", "/fhir/Patient", clinic, {"resourceType": "Patient", "identifier": [identifier]})
    assert created.status_code == 201, created.text
    patient = created.json()["id"]
    other = client.post("/v1/patients", json={}, headers=clinic.headers()).json()["id"]
    for day in ("2026-04-10", "2026-06-10", "2026-11-05"):
        body = {"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": f"{day}T09:30:00Z"}
        stored = client.post(f"/v1/patients/{patient}/measurements", json=body, headers=clinic.headers())
        assert stored.status_code == 201, stored.text
    qr = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient))
    qr["identifier"] = {"system": QR_IDENTIFIER[0], "value": QR_IDENTIFIER[1]}
    response = send(client, "POST", "/fhir/QuestionnaireResponse", clinic, qr)
    assert response.status_code == 201, response.text
    schedule = client.post(
        f"/v1/patients/{patient}/schedules", json=example_schedule(["phq9"]), headers=clinic.headers(Role.ADMIN)
    )
    assert schedule.status_code == 201, schedule.text
    return Stock(client, clinic, patient, other, response.json()["id"])


def new_response(stock: Stock, **changes: Any) -> dict[str, Any]:
    qr: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", stock.patient))
    return {**qr, **changes}


BASE_QUERIES: dict[str, Callable[[Stock], dict[str, str]]] = {
    "Questionnaire": lambda s: {},
    "QuestionnaireResponse": lambda s: {},
    "Observation": lambda s: {"subject": f"Patient/{s.patient}"},
    "Task": lambda s: {"patient": s.patient},
    "Patient": lambda s: {"identifier": PATIENT_IDENTIFIER[1]},
}
"""A search of each type that finds something in the stock (the paging rows page through it)."""


# Interactions


def read(resource_type: str, logical_id: Callable[[Stock], str]) -> Callable[[Stock], None]:
    def check(stock: Stock) -> None:
        response = stock.get(f"/fhir/{resource_type}/{logical_id(stock)}")
        assert response.status_code == 200, response.text
        assert (response.json()["resourceType"], response.json()["id"]) == (resource_type, logical_id(stock))

    return check


def search_type(resource_type: str) -> Callable[[Stock], None]:
    def check(stock: Stock) -> None:
        assert stock.ids(f"/fhir/{resource_type}", **BASE_QUERIES[resource_type](stock))

    return check


def observation_id(stock: Stock) -> str:
    return stock.ids("/fhir/Observation", subject=f"Patient/{stock.patient}")[0]


def task_id(stock: Stock) -> str:
    return stock.ids("/fhir/Task", patient=stock.patient)[0]


def create_questionnaire(stock: Stock) -> None:
    form = {key: value for key, value in fixture(SDC_QUESTIONNAIRE).items() if key != "id"}
    response = stock.send("POST", "/fhir/Questionnaire", form)
    assert response.status_code == 201, response.text


def update_questionnaire(stock: Stock) -> None:
    form = {**fixture(SDC_QUESTIONNAIRE), "id": "claims-form"}
    assert stock.send("PUT", "/fhir/Questionnaire/claims-form", form).status_code == 201
    changed = {**form, "title": "Renamed"}
    response = stock.send("PUT", "/fhir/Questionnaire/claims-form", changed)
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Renamed"


def create_response(stock: Stock) -> None:
    response = stock.send("POST", "/fhir/QuestionnaireResponse", new_response(stock))
    assert response.status_code == 201, response.text


def update_response(stock: Stock) -> None:
    body = new_response(stock, id="claims-response")
    assert stock.send("PUT", "/fhir/QuestionnaireResponse/claims-response", body).status_code == 201
    later = {**body, "authored": "2026-11-21T09:30:00+01:00"}
    response = stock.send("PUT", "/fhir/QuestionnaireResponse/claims-response", later)
    assert response.status_code == 200, response.text
    assert response.json()["authored"] == later["authored"]


def conditional_response(stock: Stock) -> None:
    criteria = f"identifier={QR_IDENTIFIER[0]}|{QR_IDENTIFIER[1]}"
    response = stock.send("POST", "/fhir/QuestionnaireResponse", new_response(stock), if_none_exist=criteria)
    assert (response.status_code, response.json()["id"]) == (200, stock.response)


def create_patient(stock: Stock) -> None:
    response = stock.send("POST", "/fhir/Patient", {"resourceType": "Patient"})
    assert response.status_code == 201, response.text


def update_patient(stock: Stock) -> None:
    identifier = [{"system": "urn:test:mrn", "value": "changed"}]
    response = stock.send(
        "PUT", f"/fhir/Patient/{stock.other}", {"resourceType": "Patient", "id": stock.other, "identifier": identifier}
    )
    assert response.status_code == 200, response.text
    assert response.json()["identifier"] == identifier


def update_creates_patient(stock: Stock) -> None:
    new_id = str(uuid.uuid4())
    response = stock.send("PUT", f"/fhir/Patient/{new_id}", {"resourceType": "Patient", "id": new_id})
    assert (response.status_code, response.json()["id"]) == (201, new_id)


def conditional_patient(stock: Stock) -> None:
    identifier = {"system": PATIENT_IDENTIFIER[0], "value": PATIENT_IDENTIFIER[1]}
    criteria = "identifier=" + "|".join(PATIENT_IDENTIFIER)
    response = stock.send(
        "POST", "/fhir/Patient", {"resourceType": "Patient", "identifier": [identifier]}, if_none_exist=criteria
    )
    assert (response.status_code, response.json()["id"]) == (200, stock.patient)


def versioned(resource_type: str, logical_id: Callable[[Stock], str]) -> Callable[[Stock], None]:
    """Every read carries ``ETag: W/"<meta.versionId>"``, and ``If-None-Match`` with it answers 304."""

    def check(stock: Stock) -> None:
        path = f"/fhir/{resource_type}/{logical_id(stock)}"
        _body, tag = read_ok(stock.client, stock.clinic, path)
        unchanged = stock.client.get(path, headers=stock.clinic.headers(Role.ADMIN, {"If-None-Match": tag}))
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert stock.client.get(path, headers=stock.clinic.headers(Role.ADMIN, {"If-None-Match": 'W/"x"'})).is_success

    return check


def versioned_update(
    resource_type: str, logical_id: Callable[[Stock], str], changed: Callable[[Stock, dict[str, Any]], dict[str, Any]]
) -> Callable[[Stock], None]:
    """Versioned reads, and an update with ``If-Match`` naming the current version is stored; naming the one it
    replaced is a 412 that changes nothing."""

    def check(stock: Stock) -> None:
        versioned(resource_type, logical_id)(stock)
        path = f"/fhir/{resource_type}/{logical_id(stock)}"
        current, tag = read_ok(stock.client, stock.clinic, path)
        updated = put(stock.client, stock.clinic, path, changed(stock, current), tag)
        assert updated.status_code == 200, updated.text
        assert updated.headers["etag"] != tag
        stale = put(stock.client, stock.clinic, path, changed(stock, current), tag)
        assert stale.status_code == 412, stale.text
        assert read_ok(stock.client, stock.clinic, path) == (updated.json(), updated.headers["etag"])

    return check


def registered_form(stock: Stock) -> str:
    form = {**fixture(SDC_QUESTIONNAIRE), "id": "versioned-form"}
    assert stock.send("PUT", "/fhir/Questionnaire/versioned-form", form).status_code in (200, 201)
    return "versioned-form"


def renamed(stock: Stock, form: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in form.items() if key != "meta"} | {"title": "Renamed"}


def questionnaires_versioned(stock: Stock) -> None:
    """A built-in's reads are versioned (by its content); a registered form's updates honour If-Match too."""
    versioned("Questionnaire", lambda s: "phq9")(stock)
    versioned_update("Questionnaire", registered_form, renamed)(stock)


def reanswered(stock: Stock, response: dict[str, Any]) -> dict[str, Any]:
    return phq9(stock.patient, 2, response["id"])


def reidentified(stock: Stock, patient: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient["id"], "identifier": [{"system": "urn:test:mrn", "value": "B"}]}


def amended(stock: Stock) -> str:
    """Amend the stock's FHIR response (every answer now 2, total 18); the id of its total score Observation."""
    scores = stock.found(
        "/fhir/Observation", subject=f"Patient/{stock.patient}", code=PHQ9_TOTAL, date="ge2026-11-20", _count="1"
    )
    [entry] = scores["entry"]
    path = f"/fhir/QuestionnaireResponse/{stock.response}"
    response = put(stock.client, stock.clinic, path, phq9(stock.patient, 2, stock.response), 'W/"1"')
    assert response.status_code == 200, response.text
    return str(entry["resource"]["id"])


def vread_response(stock: Stock) -> None:
    amended(stock)
    first, tag = read_ok(stock.client, stock.clinic, f"/fhir/QuestionnaireResponse/{stock.response}/_history/1")
    second, _ = read_ok(stock.client, stock.clinic, f"/fhir/QuestionnaireResponse/{stock.response}/_history/2")
    assert (tag, first["id"], second["meta"]["versionId"]) == ('W/"1"', stock.response, "2")
    assert first["item"] == PHQ9_RESPONSE["item"]
    assert second["item"][0]["answer"][0]["valueCoding"]["code"] == LA[2]


def vread_observation(stock: Stock) -> None:
    observation = amended(stock)
    old, _ = read_ok(stock.client, stock.clinic, f"/fhir/Observation/{observation}/_history/1")
    new, _ = read_ok(stock.client, stock.clinic, f"/fhir/Observation/{observation}/_history/2")
    assert (old["valueQuantity"]["value"], old["status"]) == (0, "final")
    assert (new["valueQuantity"]["value"], new["status"]) == (18, "amended")


def vread_questionnaire(stock: Stock) -> None:
    builtin, tag = read_ok(stock.client, stock.clinic, "/fhir/Questionnaire/phq9")
    path = f"/fhir/Questionnaire/phq9/_history/{builtin['meta']['versionId']}"
    assert read_ok(stock.client, stock.clinic, path) == (builtin, tag)
    form = registered_form(stock)
    renaming = stock.send(
        "PUT", f"/fhir/Questionnaire/{form}", {**fixture(SDC_QUESTIONNAIRE), "id": form, "title": "B"}
    )
    assert renaming.status_code == 200, renaming.text
    first, _ = read_ok(stock.client, stock.clinic, f"/fhir/Questionnaire/{form}/_history/1")
    assert first["title"] == fixture(SDC_QUESTIONNAIRE)["title"]


def history(path: Callable[[Stock], str], versions: list[str]) -> Callable[[Stock], None]:
    """``GET <path>/_history`` is a history Bundle of the versions kept, newest first."""

    def check(stock: Stock) -> None:
        resource = path(stock)
        response = stock.get(f"{resource}/_history")
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert (bundle["type"], bundle["total"]) == ("history", len(versions))
        assert [entry["resource"]["meta"]["versionId"] for entry in bundle["entry"]] == versions
        assert all(entry["fullUrl"] == f"http://testserver{resource}" for entry in bundle["entry"])

    return check


def amended_response(stock: Stock) -> str:
    amended(stock)
    return f"/fhir/QuestionnaireResponse/{stock.response}"


def amended_observation(stock: Stock) -> str:
    return f"/fhir/Observation/{amended(stock)}"


def renamed_form(stock: Stock) -> str:
    form = registered_form(stock)
    renaming = stock.send(
        "PUT", f"/fhir/Questionnaire/{form}", {**fixture(SDC_QUESTIONNAIRE), "id": form, "title": "B"}
    )
    assert renaming.status_code == 200, renaming.text
    return f"/fhir/Questionnaire/{form}"


def extract(stock: Stock) -> None:
    """``$extract`` answers the Observations a create would store (total 0 and the panel), and stores nothing."""
    before = stock.found("/fhir/Observation", subject=f"Patient/{stock.patient}", _summary="count")["total"]
    response = stock.send("POST", "/fhir/QuestionnaireResponse/$extract", new_response(stock))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "transaction")
    scores = {entry["resource"]["code"]["coding"][0]["code"]: entry["resource"] for entry in bundle["entry"]}
    assert sorted(scores) == ["44249-1", "44261-6"]
    assert scores["44261-6"]["valueQuantity"]["value"] == 0
    after = stock.found("/fhir/Observation", subject=f"Patient/{stock.patient}", _summary="count")["total"]
    assert after == before


def smart_on_fhir(stock: Stock) -> None:
    """A SMART Backend Services client gets a token at the advertised endpoint and reads with it what it may."""
    client_id = register_smart_client(stock.client, stock.clinic.headers(Role.ADMIN), ["system/Observation.rs"])
    token = access_token(stock.client, client_id, "system/Observation.rs")
    found = stock.client.get("/fhir/Observation", params={"subject": f"Patient/{stock.patient}"}, headers=bearer(token))
    assert found.status_code == 200, found.text
    assert found.json()["total"] == stock.found("/fhir/Observation", subject=f"Patient/{stock.patient}")["total"] > 0
    assert stock.client.get(f"/fhir/Patient/{stock.patient}", headers=bearer(token)).status_code == 403


def transaction(stock: Stock) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": new_response(stock), "request": {"method": "POST", "url": "QuestionnaireResponse"}}],
    }
    response = stock.send("POST", "/fhir", bundle)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"
    assert response.json()["entry"][0]["response"]["status"].startswith("201")


def batch(stock: Stock) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{stock.patient}"}},
            {"request": {"method": "GET", "url": f"Observation?subject=Patient/{stock.patient}&_count=1"}},
        ],
    }
    response = stock.send("POST", "/fhir/", bundle)
    assert response.status_code == 200, response.text
    read_entry, search_entry = response.json()["entry"]
    assert (read_entry["response"]["status"], read_entry["resource"]["id"]) == ("200 OK", stock.patient)
    assert (search_entry["resource"]["type"], len(search_entry["resource"]["entry"])) == ("searchset", 1)


# Search parameters


def filters(
    resource_type: str, name: str, hit: Callable[[Stock], str], miss: Callable[[Stock], str]
) -> Callable[[Stock], None]:
    """``name=hit`` finds something and every result of the base query; ``name=miss`` finds nothing."""

    def check(stock: Stock) -> None:
        base = {key: value for key, value in BASE_QUERIES[resource_type](stock).items() if key != name}
        path = f"/fhir/{resource_type}"
        assert stock.ids(path, **base, **{name: hit(stock)})
        assert stock.ids(path, **base, **{name: miss(stock)}) == []

    return check


def observation_dates(stock: Stock, *values: str) -> list[str]:
    bundle = stock.client.get(
        "/fhir/Observation",
        params=[("subject", f"Patient/{stock.patient}"), ("code", PHQ9_TOTAL), *(("date", v) for v in values)],
        headers=stock.clinic.headers(Role.ADMIN),
    )
    assert bundle.status_code == 200, bundle.text
    return [entry["resource"]["effectiveDateTime"][:10] for entry in bundle.json().get("entry", [])]


def observation_date(stock: Stock) -> None:
    assert observation_dates(stock, "ge2026-11-01") == ["2026-11-05", "2026-11-20"]
    assert observation_dates(stock, "ge2026-06-01", "lt2026-07") == ["2026-06-10"]
    assert observation_dates(stock, "lt2026-05") == ["2026-04-10"]
    assert observation_dates(stock, "2026-11-05") == ["2026-11-05"]
    assert observation_dates(stock, "ne2026-11-05") == ["2026-04-10", "2026-06-10", "2026-11-20"]
    assert observation_dates(stock, "gt2026-11-05T09:30:00Z") == ["2026-11-20"]
    assert observation_dates(stock, "le2026-06-10T09:30:00Z", "sa2026-04-10") == ["2026-06-10"]
    assert observation_dates(stock, "eb2026-04-11") == ["2026-04-10"]


def observation_sort(stock: Stock) -> None:
    newest = stock.found("/fhir/Observation", subject=f"Patient/{stock.patient}", code=PHQ9_TOTAL, _sort="-date")
    dates = [entry["resource"]["effectiveDateTime"][:10] for entry in newest["entry"]]
    assert dates == ["2026-11-20", "2026-11-05", "2026-06-10", "2026-04-10"]
    assert "&_sort=-date&" in newest["link"][0]["url"]


def paging_count(resource_type: str) -> Callable[[Stock], None]:
    def check(stock: Stock) -> None:
        base = BASE_QUERIES[resource_type](stock)
        path = f"/fhir/{resource_type}"
        everything = stock.found(path, **base)
        one = stock.found(path, **base, _count="1")
        assert len(one["entry"]) == 1
        assert one["total"] == everything["total"]
        relations = [link["relation"] for link in one["link"]]
        assert ("next" in relations) == (everything["total"] > 1)
        counted = stock.found(path, **base, _count="0")
        assert (counted["total"], counted.get("entry")) == (everything["total"], None)
        capped = stock.found(path, **base, _count="100000")
        assert "_count=500" in capped["link"][0]["url"]

    return check


def paging_offset(resource_type: str) -> Callable[[Stock], None]:
    def check(stock: Stock) -> None:
        base = BASE_QUERIES[resource_type](stock)
        path = f"/fhir/{resource_type}"
        everything = stock.ids(path, **base)
        assert stock.ids(path, **base, _offset="1") == everything[1:]
        second = stock.found(path, **base, _count="1", _offset="1")
        assert "previous" in [link["relation"] for link in second["link"]]

    return check


def summary_count(resource_type: str) -> Callable[[Stock], None]:
    def check(stock: Stock) -> None:
        base = BASE_QUERIES[resource_type](stock)
        counted = stock.found(f"/fhir/{resource_type}", **base, _summary="count")
        assert counted["total"] > 0
        assert "entry" not in counted

    return check


def evaluate_measure(stock: Stock) -> None:
    """The stock's patient P: PHQ-9 total 10 on 10 April 2026 is the 6-month measure's index for the period December
    2026 (index period 5 April to 5 May 2026); its window, 8 August to 6 December 2026, holds 10 (5 November) and,
    most recent, 0 (20 November): follow-up, remission and response. The subject-list names P in every population."""
    response = stock.get(
        "/fhir/Measure/depression-response-6m/$evaluate-measure",
        periodStart="2026-12-01",
        periodEnd="2026-12-31",
        reportType="subject-list",
    )
    assert response.status_code == 200, response.text
    report = response.json()
    lists = {item["id"]: item for item in report["contained"]}
    assert report["type"] == "subject-list"
    for group in report["group"]:
        assert group["measureScore"]["value"] == 1
        for population in group["population"]:
            assert population["count"] == 1
            named = lists[population["subjectResults"]["reference"].removeprefix("#")]
            assert named["entry"] == [{"item": {"reference": f"Patient/{stock.patient}"}}]


def phq9_version(stock: Stock) -> str:
    version: str = stock.get("/fhir/Questionnaire/phq9").json()["version"]
    return version


def own_base_patient(stock: Stock) -> str:
    return f"{BASE}/Patient/{stock.patient}"


ROWS: dict[Claim, Callable[[Stock], None]] = {
    ("system", "interaction", "transaction"): transaction,
    ("system", "interaction", "batch"): batch,
    ("system", "security", "SMART-on-FHIR"): smart_on_fhir,
    # Questionnaire
    ("Questionnaire", "interaction", "read"): read("Questionnaire", lambda s: "phq9"),
    ("Questionnaire", "interaction", "search-type"): search_type("Questionnaire"),
    ("Questionnaire", "interaction", "create"): create_questionnaire,
    ("Questionnaire", "interaction", "update"): update_questionnaire,
    ("Questionnaire", "updateCreate", "true"): update_questionnaire,
    ("Questionnaire", "versioning", "versioned-update"): questionnaires_versioned,
    ("Questionnaire", "interaction", "vread"): vread_questionnaire,
    ("Questionnaire", "interaction", "history-instance"): history(renamed_form, ["2", "1"]),
    ("Questionnaire", "readHistory", "true"): vread_questionnaire,
    ("Questionnaire", "search", "url"): filters("Questionnaire", "url", lambda s: PHQ9_URL, lambda s: "urn:nothing"),
    ("Questionnaire", "search", "version"): filters("Questionnaire", "version", phq9_version, lambda s: "0.0.0-none"),
    ("Questionnaire", "search", "code"): filters("Questionnaire", "code", lambda s: PHQ9_PANEL, lambda s: "nothing|0"),
    # QuestionnaireResponse
    ("QuestionnaireResponse", "interaction", "read"): read("QuestionnaireResponse", lambda s: s.response),
    ("QuestionnaireResponse", "interaction", "search-type"): search_type("QuestionnaireResponse"),
    ("QuestionnaireResponse", "interaction", "create"): create_response,
    ("QuestionnaireResponse", "interaction", "update"): update_response,
    ("QuestionnaireResponse", "updateCreate", "true"): update_response,
    ("QuestionnaireResponse", "conditionalCreate", "true"): conditional_response,
    ("QuestionnaireResponse", "versioning", "versioned-update"): versioned_update(
        "QuestionnaireResponse", lambda s: s.response, reanswered
    ),
    ("QuestionnaireResponse", "interaction", "vread"): vread_response,
    ("QuestionnaireResponse", "interaction", "history-instance"): history(amended_response, ["2", "1"]),
    ("QuestionnaireResponse", "readHistory", "true"): vread_response,
    ("QuestionnaireResponse", "operation", "extract"): extract,
    ("QuestionnaireResponse", "search", "subject"): filters(
        "QuestionnaireResponse", "subject", lambda s: f"Patient/{s.patient}", lambda s: f"Patient/{s.other}"
    ),
    ("QuestionnaireResponse", "search", "patient"): filters(
        "QuestionnaireResponse", "patient", own_base_patient, lambda s: s.other
    ),
    ("QuestionnaireResponse", "search", "questionnaire"): filters(
        "QuestionnaireResponse",
        "questionnaire",
        lambda s: PHQ9_URL,
        lambda s: "urn:compassion-outcomes:questionnaire:gad7",
    ),
    ("QuestionnaireResponse", "search", "authored"): filters(
        "QuestionnaireResponse", "authored", lambda s: "ge2026-11-20", lambda s: "lt2026-11-01"
    ),
    ("QuestionnaireResponse", "search", "identifier"): filters(
        "QuestionnaireResponse", "identifier", lambda s: "|".join(QR_IDENTIFIER), lambda s: "urn:test:responses|none"
    ),
    # Observation
    ("Observation", "interaction", "read"): read("Observation", observation_id),
    ("Observation", "interaction", "search-type"): search_type("Observation"),
    ("Observation", "versioning", "versioned"): versioned("Observation", observation_id),
    ("Observation", "interaction", "vread"): vread_observation,
    ("Observation", "interaction", "history-instance"): history(amended_observation, ["2", "1"]),
    ("Observation", "readHistory", "true"): vread_observation,
    ("Observation", "search", "subject"): filters(
        "Observation", "subject", lambda s: f"Patient/{s.patient}", lambda s: f"Patient/{s.other}"
    ),
    ("Observation", "search", "patient"): filters("Observation", "patient", own_base_patient, lambda s: s.other),
    ("Observation", "search", "code"): filters("Observation", "code", lambda s: PHQ9_TOTAL, lambda s: "nothing|0"),
    ("Observation", "search", "date"): observation_date,
    ("Observation", "search", "_lastUpdated"): filters(
        "Observation", "_lastUpdated", lambda s: "gt2000-01-01", lambda s: "lt2000-01-01"
    ),
    ("Observation", "search", "_sort"): observation_sort,
    # Task
    ("Task", "interaction", "read"): read("Task", task_id),
    ("Task", "interaction", "search-type"): search_type("Task"),
    ("Task", "versioning", "versioned"): versioned("Task", task_id),
    ("Task", "search", "patient"): filters("Task", "patient", lambda s: f"Patient/{s.patient}", lambda s: s.other),
    ("Task", "search", "status"): filters("Task", "status", lambda s: "ready,requested", lambda s: "completed"),
    # Measure
    ("Measure", "interaction", "read"): read("Measure", lambda s: "depression-remission-12m"),
    ("Measure", "versioning", "versioned"): versioned("Measure", lambda s: "depression-response-6m"),
    ("Measure", "operation", "evaluate-measure"): evaluate_measure,
    # Patient
    ("Patient", "interaction", "read"): read("Patient", lambda s: s.patient),
    ("Patient", "interaction", "search-type"): search_type("Patient"),
    ("Patient", "interaction", "create"): create_patient,
    ("Patient", "interaction", "update"): update_patient,
    ("Patient", "updateCreate", "true"): update_creates_patient,
    ("Patient", "conditionalCreate", "true"): conditional_patient,
    ("Patient", "versioning", "versioned-update"): versioned_update("Patient", lambda s: s.patient, reidentified),
    ("Patient", "search", "identifier"): filters(
        "Patient", "identifier", lambda s: "|".join(PATIENT_IDENTIFIER), lambda s: "urn:test:mrn|none"
    ),
}
for _type in BASE_QUERIES:
    ROWS[(_type, "search", "_count")] = paging_count(_type)
    ROWS[(_type, "search", "_offset")] = paging_offset(_type)
    ROWS[(_type, "search", "_summary")] = summary_count(_type)

FLAGS = ("updateCreate", "conditionalCreate", "conditionalRead", "conditionalUpdate", "readHistory")


def claims(statement: dict[str, Any]) -> set[Claim]:
    """Everything the statement says the server does."""
    [rest] = statement["rest"]
    found: set[Claim] = {("system", "interaction", i["code"]) for i in rest.get("interaction", [])}
    for resource in rest["resource"]:
        kind = resource["type"]
        found |= {(kind, "interaction", i["code"]) for i in resource.get("interaction", [])}
        found |= {(kind, "search", p["name"]) for p in resource.get("searchParam", [])}
        found |= {(kind, "operation", o["name"]) for o in resource.get("operation", [])}
        found |= {(kind, flag, "true") for flag in FLAGS if resource.get(flag) not in (None, False, "not-supported")}
        if resource.get("conditionalDelete", "not-supported") != "not-supported":
            found.add((kind, "conditionalDelete", resource["conditionalDelete"]))
        if "versioning" in resource:
            found.add((kind, "versioning", resource["versioning"]))
    found |= {("system", "operation", o["name"]) for o in rest.get("operation", [])}
    services = rest.get("security", {}).get("service", [])
    found |= {("system", "security", coding["code"]) for service in services for coding in service["coding"]}
    return found


def test_every_claim_has_a_row_and_every_row_a_claim(client: TestClient) -> None:
    claimed = claims(client.get("/fhir/metadata").json())

    assert sorted(claimed - set(ROWS)) == [], "claimed but never exercised"
    assert sorted(set(ROWS) - claimed) == [], "exercised but not claimed"


@pytest.mark.parametrize("claim", sorted(ROWS), ids=lambda claim: ":".join(claim))
def test_each_claim_holds(stock: Stock, claim: Claim) -> None:
    ROWS[claim](stock)


UNCLAIMED_PROBES: dict[str, tuple[str, str]] = {
    "read": ("GET", "/fhir/{type}/{id}"),
    "vread": ("GET", "/fhir/{type}/{id}/_history/1"),
    "update": ("PUT", "/fhir/{type}/{id}"),
    "patch": ("PATCH", "/fhir/{type}/{id}"),
    "delete": ("DELETE", "/fhir/{type}/{id}"),
    "history-instance": ("GET", "/fhir/{type}/{id}/_history"),
    "history-type": ("GET", "/fhir/{type}/_history"),
    "create": ("POST", "/fhir/{type}"),
    "search-type": ("GET", "/fhir/{type}"),
}
OTHER_TYPES = ("Encounter", "Condition")


def test_what_is_not_claimed_is_refused(stock: Stock) -> None:
    claimed = claims(stock.client.get("/fhir/metadata").json())
    types = {kind for kind, what, _ in claimed if what == "interaction" and kind != "system"}
    probes = [
        (kind, interaction, method, path.format(type=kind, id=stock.patient))
        for kind in (*sorted(types), *OTHER_TYPES)
        for interaction, (method, path) in UNCLAIMED_PROBES.items()
        if (kind, "interaction", interaction) not in claimed
    ]
    headers = stock.clinic.headers(Role.ADMIN, {"Content-Type": FHIR_JSON})
    answers = {
        (kind, interaction): stock.client.request(method, path, headers=headers, content=b"{}").status_code
        for kind, interaction, method, path in probes
    }

    assert len(probes) > 20
    # 400: ``_history`` is no logical id, so ``GET /fhir/{type}/_history`` is refused as a malformed read.
    assert {probe: status for probe, status in answers.items() if status not in (400, 404, 405)} == {}
    assert stock.client.get("/fhir/_history", headers=headers).status_code in (404, 405)
