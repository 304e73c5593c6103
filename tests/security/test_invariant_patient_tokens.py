"""Invariant: a patient token stays in its patient. Patient A's token tries every route of the OpenAPI schema and every
FHIR interaction (conditional headers, Bundle entries of every method, PUT of another patient's resource ids, replays
of another token's Idempotency-Key requests) against patient B of the same clinic, whose records carry recognisable
markers. No answer (body or headers) carries any of B's markers beyond what A itself sent, and nothing of B's changes.

Routes are read from the OpenAPI schema when the suite runs (``openapi_routes.routes``), so a route added later is
covered without editing this file; the FHIR interactions beyond the schema (catch-all paths, Bundle entries) are
built from B's records.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from app.auth.permissions import Role
from tests.conftest import ISSUE_PHQ9, ClinicKeys, new_clinic
from tests.security.clinics import created, enrol
from tests.security.openapi_routes import (
    MEASURED_AT,
    PHQ9_RESPONSE,
    Route,
    body_arguments,
    body_references,
    example_body,
    fill,
    fill_body,
    path_variants,
    query_values,
    routes,
)

FHIR_JSON = "application/fhir+json"
FEED = "urn:oid:1.2.3.4.5"
FHIR_TYPES = ("QuestionnaireResponse", "Patient", "Observation", "Questionnaire")
BUNDLE_METHODS = ("POST", "PUT", "GET", "DELETE", "PATCH", "HEAD")


@dataclass
class Neighbour:
    """Patient B: records of every kind, recognisable by markers; what B's own token sent with Idempotency-Keys."""

    keys: ClinicKeys
    patient_id: str
    token: str
    known: dict[str, list[str]]
    """Path or body parameter name → B's ids for it."""
    identifiers: list[tuple[str, str]]
    """(system, value) of B's QuestionnaireResponses."""
    patient_identifier: tuple[str, str]
    unused_enrolment_code: str
    replays: list[tuple[str, str, str, str]]
    """(method, path, body, Idempotency-Key) of requests B's token sent: A sends them again, key and all."""
    markers: set[str] = field(default_factory=set)

    @property
    def admin(self) -> dict[str, str]:
        return self.keys.headers(Role.ADMIN)

    def ids(self, name: str, _route: Route) -> list[str]:
        if name in self.known:
            return self.known[name]
        # An id of a kind B has none of by that name: each of B's records in turn.
        return [value for values in self.known.values() for value in values]

    def filters(self) -> dict[str, str]:
        return {
            "patient_id": self.patient_id,
            "measurement_id": self.known["measurement_id"][0],
            "session_id": self.known["session_id"][0],
            "key_id": self.known["key_id"][0],
            "external_id": self.known["external_id"][0],
            "identifier": "|".join(self.patient_identifier),
        }

    def leaked(self, text: str, *, sent: list[str]) -> list[str]:
        """B's markers in an answer, once the values A itself sent (echoed in an error's detail) are cut."""
        for value in sorted((value for value in sent if value), key=len, reverse=True):
            text = text.replace(value, "")
        return sorted(marker for marker in self.markers if marker in text)


def stocked_patient(client: TestClient, keys: ClinicKeys) -> Neighbour:
    """Patient B with a session, an amended measurement (an alert), three FHIR responses (a conditional create and a
    plain POST by B's token, a PUT under a client id by the EHR), an unused enrolment and a token."""
    tag = uuid.uuid4().hex[:10]
    admin = keys.headers(Role.ADMIN)
    integration = keys.headers(Role.INTEGRATION, {"Content-Type": FHIR_JSON})
    patient_identifier = ("urn:oid:2.16.578.1.12.4.1.4.1", f"EHR-B-{tag}")
    patient = created(
        client.post(
            "/v1/patients",
            json={
                "external_id": f"MRN-B-{tag}",
                "identifiers": [{"system": patient_identifier[0], "value": patient_identifier[1]}],
            },
            headers=admin,
        )
    )
    b = patient["id"]
    therapy_session = created(
        client.post(
            f"/v1/patients/{b}/sessions",
            json={"started_at": MEASURED_AT, "episode": f"episode-b-{tag}", "label": f"session-b-{tag}"},
            headers=admin,
        )
    )
    measurement = created(
        client.post(
            f"/v1/patients/{b}/measurements",
            json={
                "instrument": "phq9",
                "items": ISSUE_PHQ9,
                "measured_at": MEASURED_AT,
                "session_id": therapy_session["id"],
            },
            headers=admin,
        )
    )
    created(
        client.post(
            f"/v1/patients/{b}/measurements/{measurement['id']}/amend",
            json={"items": {**ISSUE_PHQ9, "1": 2}, "reason": f"reason-b-{tag}"},
            headers=admin,
        )
    )
    unused = created(client.post(f"/v1/patients/{b}/enrolments", json={}, headers=admin))
    token, token_key_id = enrol(client, keys, b)
    phone = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}

    def response(author: str, identifier: str | None = None) -> dict[str, Any]:
        qr: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", b))
        qr["author"] = {"display": author}
        if identifier is not None:
            qr["identifier"] = {"system": FEED, "value": identifier}
        return qr

    conditional = created(
        client.post(
            "/fhir/QuestionnaireResponse",
            content=json.dumps(response(f"author-b-conditional-{tag}", f"resp-b-{tag}")),
            headers={**phone, "If-None-Exist": f"identifier={FEED}|resp-b-{tag}"},
        )
    )
    put_id = f"qr-b-{tag}"
    created(
        client.put(
            f"/fhir/QuestionnaireResponse/{put_id}",
            content=json.dumps({**response(f"author-b-ehr-{tag}", f"put-b-{tag}"), "id": put_id}),
            headers=integration,
        )
    )
    fhir_body = json.dumps({k: v for k, v in response(f"author-b-phone-{tag}").items() if k != "subject"})
    fhir_key = f"b-fhir-{tag}"
    posted = created(
        client.post("/fhir/QuestionnaireResponse", content=fhir_body, headers={**phone, "Idempotency-Key": fhir_key})
    )
    own_body = json.dumps({"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": MEASURED_AT})
    own_key = f"b-me-{tag}"
    own = created(
        client.post(
            "/v1/me/measurements",
            content=own_body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": own_key,
            },
        )
    )
    observations = created(client.get("/fhir/Observation", params={"subject": f"Patient/{b}"}, headers=admin))
    alerts = client.get("/v1/clinic/alerts", params={"patient_id": b, "limit": 500}, headers=admin)
    alert_ids = [str(a["id"]) for a in alerts.json()["items"]] if alerts.status_code == 200 else []
    schedule = created(
        client.post(
            f"/v1/patients/{b}/schedules",
            json={"instruments": ["phq9"], "at_each_session": True, "window_days": 1},
            headers=admin,
        )
    )
    now = datetime.now(UTC).isoformat()
    created(client.post(f"/v1/patients/{b}/sessions", json={"started_at": now}, headers=admin))  # makes phq9 due
    b_assessments = client.get(f"/v1/patients/{b}/assessments", headers=admin).json()["items"]
    known = {
        "patient_id": [b],
        "schedule_id": [schedule["id"]],
        "assessment_id": [str(item["id"]) for item in b_assessments],
        "measurement_id": [measurement["id"], own["id"]],
        "session_id": [therapy_session["id"]],
        "enrolment_id": [unused["id"]],
        "key_id": [token_key_id],
        "response_id": [conditional["id"], put_id, posted["id"]],
        "observation_id": [entry["resource"]["id"] for entry in observations.get("entry", [])],
        "alert_id": alert_ids,
        "external_id": [f"MRN-B-{tag}"],
    }
    markers = {value for values in known.values() for value in values}
    markers |= {
        patient_identifier[1],
        f"resp-b-{tag}",
        f"put-b-{tag}",
        f"episode-b-{tag}",
        f"session-b-{tag}",
        f"reason-b-{tag}",
        f"author-b-conditional-{tag}",
        f"author-b-ehr-{tag}",
        f"author-b-phone-{tag}",
        unused["code"],
        token,
    }
    assert known["observation_id"]
    assert alert_ids, "B's PHQ-9 (item 9 answered) raises an alert"
    return Neighbour(
        keys=keys,
        patient_id=b,
        token=token,
        known=known,
        identifiers=[(FEED, f"resp-b-{tag}"), (FEED, f"put-b-{tag}")],
        patient_identifier=patient_identifier,
        unused_enrolment_code=unused["code"],
        replays=[
            ("POST", "/fhir/QuestionnaireResponse", fhir_body, fhir_key),
            ("POST", "/v1/me/measurements", own_body, own_key),
        ],
        markers=markers,
    )


def snapshot(client: TestClient, b: Neighbour) -> list[Any]:
    """Everything of B's, as the clinic's admin reads it: patient, sessions, tokens, measurements with their
    histories, FHIR responses (with versions), Observations, alerts."""
    admin = b.admin
    patient = f"/v1/patients/{b.patient_id}"
    reads = [
        created(client.get(path, params={"limit": 500}, headers=admin))
        for path in (patient, f"{patient}/measurements", f"{patient}/sessions", f"{patient}/tokens")
    ]
    reads += [
        created(client.get(f"{patient}/measurements/{measurement_id}/history", headers=admin))
        for measurement_id in b.known["measurement_id"]
    ]
    reads += [
        created(client.get(f"/fhir/QuestionnaireResponse/{response_id}", headers=admin))
        for response_id in b.known["response_id"]
    ]
    reads.append(created(client.get("/fhir/Observation", params={"subject": f"Patient/{b.patient_id}"}, headers=admin)))
    reads += [created(client.get(f"/v1/clinic/alerts/{alert_id}", headers=admin)) for alert_id in b.known["alert_id"]]
    return reads


@dataclass(frozen=True)
class Attempt:
    """One request of A's token, and the values A itself put into it (cut before looking for B's markers)."""

    label: str
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sent: tuple[str, ...] = ()


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    succeeded: int = 0

    def run(self, http: TestClient, token: str, b: Neighbour, attempt: Attempt) -> Response:
        response = http.request(
            attempt.method,
            attempt.url,
            params=attempt.params,
            content=attempt.content,
            headers={**attempt.headers, "Authorization": f"Bearer {token}"},
        )
        self.requests += 1
        self.statuses[response.status_code] += 1
        if response.status_code < 300:
            self.succeeded += 1
        if response.status_code >= 500:
            self.server_errors.append(f"{attempt.label} -> {response.status_code}")
        answer = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        content = (attempt.content or b"").decode()
        sent = [*attempt.sent, *attempt.params.values(), *attempt.headers.values(), attempt.url]
        sent += [marker for marker in b.markers if marker in content]  # what A sent of B's (a PUT of B's content)
        sent += [part for part in attempt.url.split("/") if part]
        leaked = b.leaked(answer, sent=sent)
        if leaked:
            self.leaks.append(f"{attempt.label} -> {response.status_code}: {leaked}")
        return response


def route_attempts(app: FastAPI, route: Route, a_patient: str, b: Neighbour) -> Iterator[Attempt]:
    """A's token on one route: B's ids in the path, query and body; then, where the path names a patient, A's own
    patient in the path with B's records named in the body. FHIR writes also go with conditional headers naming B's
    responses. A POST carries a new Idempotency-Key (B's own keys are replayed, exactly, before the sweep)."""
    template = example_body(app.openapi(), route)
    references = body_references(template)
    conditional: list[dict[str, str]] = [{}]
    if route.path.startswith("/fhir") and route.method == "POST":
        conditional += [{"If-None-Exist": f"identifier={system}|{value}"} for system, value in b.identifiers]
        conditional.append({"If-None-Exist": f"identifier={b.identifiers[0][1]}"})
    if route.path.startswith("/fhir") and route.method == "PUT":
        conditional.append({"If-Match": 'W/"1"'})
    for values in path_variants(route, b.ids):
        owners = (values, {**values, "patient_id": a_patient}) if "patient_id" in values else (values,)
        for path_values in owners:
            named = {name: path_values.get(name, b.ids(name, route)[0]) for name in references}
            body = naming_b(fill_body(template, named), b)
            query = query_values(route, b.ids, filters=b.filters())
            query |= {name: f"Patient/{b.patient_id}" for name in query if name in ("subject", "patient")}
            arguments = body_arguments(route, body)
            url = fill(route.path, path_values)
            for headers in conditional:
                sent_headers = {**arguments.get("headers", {}), **headers, "Prefer": "return=representation"}
                if route.method == "POST":
                    sent_headers["Idempotency-Key"] = str(uuid.uuid4())
                yield Attempt(
                    label=f"{route.method} {url} {sorted(headers)}",
                    method=route.method,
                    url=url,
                    params=query,
                    content=arguments.get("content"),
                    headers=sent_headers,
                    sent=(*path_values.values(), *named.values(), *b_values_in(body, b)),
                )


NAMED_IN_BODIES = ("patient_id", "measurement_id", "session_id", "enrolment_id", "key_id")


def naming_b(body: Any, b: Neighbour) -> Any:
    """The body with every field that names a record (``session_id``, ``patient_id``...) set to B's; a measurement
    names B's session."""
    if isinstance(body, list):
        return [naming_b(item, b) for item in body]
    if not isinstance(body, dict):
        return body
    changed = {key: b.known[key][0] if key in NAMED_IN_BODIES else naming_b(value, b) for key, value in body.items()}
    if "instrument" in changed and "items" in changed and "measured_at" in changed:
        changed["session_id"] = b.known["session_id"][0]
    return changed


def b_values_in(body: Any, b: Neighbour) -> list[str]:
    text = json.dumps(body) if body is not None else ""
    return [value for values in b.known.values() for value in values if value in text]


def fhir_attempts(b: Neighbour, stored: dict[str, dict[str, Any]], a_response: dict[str, Any]) -> Iterator[Attempt]:
    """FHIR interactions beyond one call per route: conditional creates naming B's responses (with every Prefer),
    PUTs of B's ids (B's stored content, A's own, B's without a subject), a Patient conditional create with B's
    identifier, searches and history the server does not offer, and Bundle entries of every method."""
    fhir = {"Content-Type": FHIR_JSON}
    mine = json.dumps(a_response).encode()
    criteria = [f"identifier={s}|{v}" for s, v in b.identifiers] + [f"identifier={v}" for _, v in b.identifiers]
    for criterion in criteria:
        for prefer in ("return=representation", "return=minimal", "return=OperationOutcome"):
            headers = {**fhir, "If-None-Exist": criterion, "Prefer": prefer, "Idempotency-Key": str(uuid.uuid4())}
            yield Attempt(
                f"POST QuestionnaireResponse If-None-Exist {prefer}", "POST", QR, content=mine, headers=headers
            )
    for response_id, as_stored in stored.items():
        bodies = (as_stored, {**a_response, "id": response_id}, {k: v for k, v in as_stored.items() if k != "subject"})
        for body in bodies:
            yield Attempt(
                "PUT QuestionnaireResponse/{B's id}",
                "PUT",
                f"{QR}/{response_id}",
                content=json.dumps(body).encode(),
                headers={**fhir, "Prefer": "return=representation", "If-Match": 'W/"1"'},
                sent=(response_id,),
            )
    identifier = {"system": b.patient_identifier[0], "value": b.patient_identifier[1]}
    yield Attempt(
        "POST Patient If-None-Exist B's identifier",
        "POST",
        "/fhir/Patient",
        content=json.dumps({"resourceType": "Patient", "identifier": [identifier]}).encode(),
        headers={**fhir, "If-None-Exist": "identifier=" + "|".join(b.patient_identifier)},
        sent=b.patient_identifier,
    )
    for path in not_offered(b):
        for method in ("GET", "DELETE", "PATCH"):
            yield Attempt(f"{method} {path.split('?')[0]} (not in the schema)", method, path, headers=fhir)
    for bundle_type in ("batch", "transaction"):
        for entries in bundle_entries(b, a_response):
            request = entries[-1]["request"]
            yield Attempt(
                f"{bundle_type} entry {request['method']} {request['url'].split('/')[0].split('?')[0]}",
                "POST",
                "/fhir",
                content=json.dumps({"resourceType": "Bundle", "type": bundle_type, "entry": entries}).encode(),
                headers={**fhir, "Prefer": "return=representation"},
                sent=tuple(b_values_in(entries, b)),
            )


QR = "/fhir/QuestionnaireResponse"


def not_offered(b: Neighbour) -> list[str]:
    """Searches naming B (which a patient token may not make), and history and operations the server does not offer
    (its catch-all answers them)."""
    response_id = b.known["response_id"][0]
    return [
        f"{QR}?subject=Patient/{b.patient_id}",
        f"{QR}?patient={b.patient_id}",
        f"{QR}?identifier={b.identifiers[0][1]}",
        f"{QR}/{response_id}/_history",
        f"{QR}/{response_id}/_history/1",
        f"/fhir/Patient?identifier={'|'.join(b.patient_identifier)}",
        f"/fhir/Patient/{b.patient_id}/_history",
        f"/fhir/Patient/{b.patient_id}/$everything",
        f"/fhir/Observation?patient={b.patient_id}",
        "/fhir/_history",
    ]


def bundle_entries(b: Neighbour, a_response: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Entries of every method naming B's resources by id, search, identifier, subject or a Bundle-local fullUrl."""
    urls = [f"{resource_type}/{b.patient_id}" for resource_type in FHIR_TYPES]
    urls += [f"QuestionnaireResponse/{response_id}" for response_id in b.known["response_id"]]
    urls += [f"Observation/{observation_id}" for observation_id in b.known["observation_id"]]
    urls += [f"QuestionnaireResponse?subject=Patient/{b.patient_id}", f"Observation?subject=Patient/{b.patient_id}"]
    about_b = {**a_response, "subject": {"reference": f"Patient/{b.patient_id}"}}
    for method in BUNDLE_METHODS:
        for url in urls:
            resource_type, _, logical_id = url.partition("?")[0].partition("/")
            entry: dict[str, Any] = {"request": {"method": method, "url": resource_type if method == "POST" else url}}
            if method == "POST":
                entry["resource"] = (
                    about_b if resource_type == "QuestionnaireResponse" else {"resourceType": resource_type}
                )
            elif method == "PUT":
                content = a_response if resource_type == "QuestionnaireResponse" else {"resourceType": resource_type}
                entry["resource"] = {**content, "id": logical_id}
            yield [entry]
    for system, value in b.identifiers:
        conditional = {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": f"identifier={system}|{value}"}
        yield [{"resource": a_response, "request": conditional}]
    local = f"urn:uuid:{uuid.uuid4()}"
    yield [
        {
            "fullUrl": local,
            "resource": {"resourceType": "Patient", "id": b.patient_id},
            "request": {"method": "PUT", "url": f"Patient/{b.patient_id}"},
        },
        {
            "resource": {**a_response, "subject": {"reference": local}},
            "request": {"method": "POST", "url": "QuestionnaireResponse"},
        },
    ]


def test_a_patient_token_never_reaches_another_patient_of_its_clinic(
    app: FastAPI, client: TestClient, http: TestClient, figures: list[str], backend: str
) -> None:
    keys = new_clinic(app)
    a_patient = created(client.post("/v1/patients", json={}, headers=keys.headers()))["id"]
    a_token, _ = enrol(client, keys, a_patient)
    b = stocked_patient(client, keys)
    stored = {rid: created(client.get(f"{QR}/{rid}", headers=b.admin)) for rid in b.known["response_id"]}
    before = snapshot(client, b)
    tally = Tally()

    # B's token's own Idempotency-Key requests, sent again by A exactly (path, body, key): A's own, never a replay.
    replays = [
        tally.run(
            http,
            a_token,
            b,
            Attempt(
                f"replay of B's {method} {path}",
                method,
                path,
                content=body.encode(),
                headers={
                    "Content-Type": FHIR_JSON if path.startswith("/fhir") else "application/json",
                    "Idempotency-Key": key,
                },
            ),
        )
        for method, path, body, key in b.replays
    ]
    every_route = routes(app)
    for route in every_route:
        for attempt in route_attempts(app, route, a_patient, b):
            tally.run(http, a_token, b, attempt)
    route_requests = tally.requests - len(replays)
    a_response = {key: value for key, value in PHQ9_RESPONSE.items() if key != "subject"}
    for attempt in fhir_attempts(b, stored, a_response):
        tally.run(http, a_token, b, attempt)
    interactions = tally.requests - route_requests

    after = snapshot(client, b)
    figures.append(
        f"[{backend}] patient tokens stay in their patient: {len(every_route)} routes tried in {route_requests} "
        f"requests, {interactions} further FHIR interactions (conditional headers, PUT of the other patient's ids, "
        f"Bundle entries of {len(BUNDLE_METHODS)} methods, searches and history, Idempotency-Key replays); "
        f"statuses {dict(sorted(tally.statuses.items()))}; {len(tally.leaks)} leaks, "
        f"the other patient's records {'unchanged' if after == before else 'CHANGED'}"
    )
    assert tally.leaks == []
    assert tally.server_errors == []
    assert 429 not in tally.statuses, "throttled: some attempts were never tried"
    assert after == before
    assert [(r.status_code, r.headers.get("Idempotent-Replayed")) for r in replays] == [(201, None)] * len(replays)
    assert tally.succeeded > 0  # A's token works (its own patient, the instruments): the refusals are about B
    assert client.get("/v1/instruments", headers={"Authorization": f"Bearer {b.token}"}).status_code == 200
    assert client.post("/v1/enrolments/exchange", json={"code": b.unused_enrolment_code}).status_code == 201
