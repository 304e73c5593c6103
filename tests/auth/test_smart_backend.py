"""SMART Backend Services (App Launch 2.2): a client registered with its public keys signs its own assertion, gets a
short-lived token for the scopes it asked and was allowed, and can do on /fhir exactly what they grant, nothing else."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.db import utcnow
from app.core.state import state_of
from tests.auth.smart import (
    EC_KID,
    RSA_KID,
    assertion,
    bearer,
    private_keys,
    public_jwks,
    register,
    request_token,
    token_endpoint,
)
from tests.conftest import ClinicKeys
from tests.security.openapi_routes import PHQ9_RESPONSE

ONLY_RESPONSES_IN = "system/QuestionnaireResponse.c system/Observation.rs"
FHIR = "application/fhir+json"


def phq9_response(patient_id: str) -> dict[str, Any]:
    response: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id))
    return response


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_client_with_response_scopes_posts_a_response_and_reads_its_observations_and_nothing_else(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str, alg: str
) -> None:
    client_id = register(client, clinic.headers(Role.ADMIN), ONLY_RESPONSES_IN.split())
    key_id = client.get(f"/v1/smart-clients/{client_id}", headers=clinic.headers(Role.ADMIN)).json()["key_id"]
    endpoint = token_endpoint(client)

    issued = request_token(client, assertion(client_id, endpoint, alg=alg), ONLY_RESPONSES_IN)
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "bearer",
        300,
        "system/Observation.rs system/QuestionnaireResponse.c",
    )
    smart = {**bearer(body["access_token"]), "Accept": FHIR}

    posted = client.post("/fhir/QuestionnaireResponse", json=phq9_response(patient_id), headers=smart)
    assert posted.status_code == 201, posted.text
    observations = client.get("/fhir/Observation", params={"subject": f"Patient/{patient_id}"}, headers=smart)
    assert observations.status_code == 200, observations.text
    entries = observations.json()["entry"]
    codes = {coding["code"] for entry in entries for coding in entry["resource"]["code"]["coding"]}
    assert "44261-6" in codes  # the PHQ-9 total's LOINC code
    one = entries[0]["resource"]["id"]
    assert client.get(f"/fhir/Observation/{one}", headers=smart).status_code == 200

    refused = {
        "POST /fhir/Patient": client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=smart),
        "PUT /fhir/Patient/{id}": client.put(
            f"/fhir/Patient/{patient_id}", json={"resourceType": "Patient", "id": patient_id}, headers=smart
        ),
        "GET /fhir/Patient/{id}": client.get(f"/fhir/Patient/{patient_id}", headers=smart),
        "GET /fhir/QuestionnaireResponse/{id}": client.get(
            f"/fhir/QuestionnaireResponse/{posted.json()['id']}", headers=smart
        ),
        "GET /fhir/Task": client.get("/fhir/Task", params={"patient": patient_id}, headers=smart),
        "GET /v1/patients": client.get("/v1/patients", headers=smart),
        "GET /v1/patients/{id}": client.get(f"/v1/patients/{patient_id}", headers=smart),
        "POST /v1/patients": client.post("/v1/patients", json={}, headers=smart),
        "GET /v1/instruments": client.get("/v1/instruments", headers=smart),
        "GET /v1/smart-clients": client.get("/v1/smart-clients", headers=smart),
    }
    assert {route: answer.status_code for route, answer in refused.items()} == dict.fromkeys(refused, 403)
    assert refused["POST /fhir/Patient"].json()["resourceType"] == "OperationOutcome"

    with state_of(app).read_sessions() as db:
        trail = db.execute(
            select(AuditEvent.route, AuditEvent.method, AuditEvent.status_code, AuditEvent.role).where(
                AuditEvent.key_id == uuid.UUID(key_id), AuditEvent.clinic_id == clinic.id
            )
        ).all()
    recorded = {(row.method, row.route, row.status_code, row.role) for row in trail}
    assert {
        ("POST", "/v1/smart/token", 200, "smart_client"),
        ("POST", "/fhir/QuestionnaireResponse", 201, "smart_client"),
        ("GET", "/fhir/Observation", 200, "smart_client"),
        ("POST", "/fhir/Patient", 403, "smart_client"),
        ("GET", "/v1/patients", 403, "smart_client"),
    } <= recorded


def test_discovery_and_the_capability_statement_say_how_to_get_a_token(client: TestClient) -> None:
    configuration = client.get("/.well-known/smart-configuration").json()
    assert client.get("/fhir/.well-known/smart-configuration").json() == configuration
    assert configuration["token_endpoint"] == "http://localhost:8000/v1/smart/token"  # PUBLIC_BASE_URL + the path
    assert configuration["grant_types_supported"] == ["client_credentials"]
    assert configuration["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert configuration["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in configuration["capabilities"]
    assert "system/Observation.rs" in configuration["scopes_supported"]

    security = client.get("/fhir/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = security["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert oauth["extension"] == [{"url": "token", "valueUri": configuration["token_endpoint"]}]


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}."


def test_assertions_that_must_not_authenticate_a_client_are_refused(client: TestClient, clinic: ClinicKeys) -> None:
    client_id = register(client, clinic.headers(Role.ADMIN), ["system/Observation.rs"])
    endpoint = token_endpoint(client)
    used = assertion(client_id, endpoint, jti="once-only")
    assert request_token(client, used, "system/Observation.rs").status_code == 200
    now = int(utcnow().timestamp())
    claims = {"iss": client_id, "sub": client_id, "aud": endpoint, "exp": now + 60, "jti": str(uuid.uuid4())}
    hmac_key = OctKey.import_key(b"a shared secret the server never has!")
    foreign_rsa = RSAKey.generate_key(2048, parameters={"kid": RSA_KID})

    cases = {
        "replayed jti": used,
        "wrong aud": assertion(client_id, "https://elsewhere.example/token"),
        "aud of the FHIR base": assertion(client_id, endpoint.replace("/v1/smart/token", "/fhir")),
        "expired": assertion(client_id, endpoint, exp_in=-5),
        "exp more than 5 minutes ahead": assertion(client_id, endpoint, exp_in=900),
        "unknown kid": assertion(client_id, endpoint, header={"kid": "not-registered"}),
        "no kid": unsigned({"alg": "RS384"}, claims),
        "alg none": unsigned({"alg": "none", "kid": RSA_KID}, claims),
        "alg HS256": jwt.encode({"alg": "HS256", "kid": RSA_KID}, claims, hmac_key, algorithms=["HS256"]),
        "alg RS256": jwt.encode(
            {"alg": "RS256", "kid": RSA_KID}, claims, private_keys()["RS384"], algorithms=["RS256"]
        ),
        "ES384 header naming the RSA key": assertion(client_id, endpoint, alg="ES384", header={"kid": RSA_KID}),
        "signed by another key": assertion(client_id, endpoint, key=foreign_rsa),
        "sub differs": assertion(client_id, endpoint, claims={"sub": str(uuid.uuid4())}),
        "unknown client": assertion(str(uuid.uuid4()), endpoint),
        "no jti": assertion(client_id, endpoint, claims={"jti": None}),
        "not a JWT": "not.a.jwt",
    }
    answers = {name: request_token(client, signed, "system/Observation.rs") for name, signed in cases.items()}

    assert {name: (a.status_code, a.json()["error"]) for name, a in answers.items()} == dict.fromkeys(
        cases, (400, "invalid_client")
    )
    assert all(a.headers["content-type"] == "application/json" for a in answers.values())


def test_token_requests_get_oauth_errors(client: TestClient, clinic: ClinicKeys) -> None:
    client_id = register(client, clinic.headers(Role.ADMIN), ["system/Observation.rs"])
    endpoint = token_endpoint(client)

    def error_of(scope: str, **extra: str) -> tuple[int, str]:
        answer = request_token(client, assertion(client_id, endpoint), scope, **extra)
        return answer.status_code, answer.json()["error"]

    assert error_of("system/Patient.rs") == (400, "invalid_scope")
    assert error_of("patient/Observation.rs") == (400, "invalid_scope")
    assert error_of("system/Observation.rs", grant_type="authorization_code") == (400, "unsupported_grant_type")
    assert error_of("system/Observation.rs", client_id=str(uuid.uuid4())) == (400, "invalid_client")
    as_json = client.post("/v1/smart/token", json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")

    wide = request_token(client, assertion(client_id, endpoint), "system/*.rs system/Patient.c")
    assert (wide.status_code, wide.json()["scope"]) == (200, "system/Observation.rs")  # what was allowed, no more
    v1 = request_token(client, assertion(client_id, endpoint, alg="ES384"), "system/Observation.read")
    assert (v1.status_code, v1.json()["scope"]) == (200, "system/Observation.rs")


def test_a_token_stops_working_when_it_expires_or_its_client_is_revoked(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    admin = clinic.headers(Role.ADMIN)
    client_id = register(client, admin, ["system/Observation.rs"])
    search = {"subject": f"Patient/{patient_id}"}
    start = utcnow() - timedelta(hours=1)  # in the past: what it records sorts before later tests' events
    with CLOCK.frozen_at(start):
        token = request_token(client, assertion(client_id, token_endpoint(client)), "system/Observation.rs")
        smart = bearer(token.json()["access_token"])
        assert client.get("/fhir/Observation", params=search, headers=smart).status_code == 200
        CLOCK.move_to(start + timedelta(seconds=301))
        expired = client.get("/fhir/Observation", params=search, headers=smart)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    bad = client.get("/fhir/Observation", params=search, headers=bearer("smart_0123456789ab_forged"))
    assert (bad.status_code, bad.headers["www-authenticate"]) == (401, 'Bearer error="invalid_token"')

    renewed = request_token(client, assertion(client_id, token_endpoint(client)), "system/Observation.rs")
    fresh = bearer(renewed.json()["access_token"])
    assert client.get("/fhir/Observation", params=search, headers=fresh).status_code == 200
    revoked = client.post(f"/v1/smart-clients/{client_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/fhir/Observation", params=search, headers=fresh).status_code == 401
    again = request_token(client, assertion(client_id, token_endpoint(client)), "system/Observation.rs")
    assert (again.status_code, again.json()["error"]) == (400, "invalid_client")
    assert client.get("/v1/patients", headers=admin).status_code == 200  # API keys keep working


def test_bundle_entries_are_held_to_the_scopes(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    client_id = register(client, clinic.headers(Role.ADMIN), ONLY_RESPONSES_IN.split())
    issued = request_token(client, assertion(client_id, token_endpoint(client)), ONLY_RESPONSES_IN)
    smart = bearer(issued.json()["access_token"])
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": phq9_response(patient_id), "request": {"method": "POST", "url": "QuestionnaireResponse"}},
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    answer = client.post("/fhir", json=batch, headers=smart)
    assert answer.status_code == 200, answer.text
    assert [entry["response"]["status"][:3] for entry in answer.json()["entry"]] == ["201", "403"]


def test_registration_accepts_public_rs384_and_es384_keys_only(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)
    rsa, ec = (key.as_dict(private=True) for key in private_keys().values())
    p256 = ECKey.generate_key("P-256", parameters={"kid": "p256"}).as_dict(private=False)
    oct_key = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}
    public = public_jwks()["keys"]

    def refused(jwks: dict[str, Any], scopes: list[str] | None = None) -> dict[str, Any]:
        body = {"name": "EHR", "jwks": jwks, "scopes": scopes or ["system/Observation.rs"]}
        answer = client.post("/v1/smart-clients", json=body, headers=admin)
        assert answer.status_code == 422, answer.text
        error: dict[str, Any] = answer.json()["errors"][0]
        return error

    assert refused({"keys": [rsa]})["field"] == "jwks.keys.0"
    assert refused({"keys": [public[0], ec]})["field"] == "jwks.keys.1"
    assert refused({"keys": [oct_key]})["field"] == "jwks.keys.0.kty"
    assert refused({"keys": [p256]})["allowed"] == ["P-384"]
    assert refused({"keys": [{**public[0], "alg": "RS256"}]})["allowed"] == ["RS384"]
    assert refused({"keys": [public[0], public[0]]})["field"] == "jwks.keys.1.kid"
    assert refused({"keys": [{k: v for k, v in public[0].items() if k != "kid"}]})["field"] == "jwks.keys.0.kid"
    scope_error = refused({"keys": public}, ["system/Observation.rs", "patient/*.read"])
    assert scope_error["field"] == "scopes.1"
    assert "system/Observation.rs" in scope_error["allowed"]

    created = client.post(
        "/v1/smart-clients",
        json={"name": "EHR", "jwks": {"keys": public}, "scopes": ["system/Observation.read", "system/*.s"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["system/*.s", "system/Observation.r"]
    assert {key["kid"] for key in created.json()["jwks"]["keys"]} == {RSA_KID, EC_KID}
    assert created.json()["id"] in {c["id"] for c in client.get("/v1/smart-clients", headers=admin).json()["items"]}
    staff_keys = {key["id"] for key in client.get("/v1/api-keys", headers=admin).json()["items"]}
    assert created.json()["key_id"] not in staff_keys  # the client's key is no staff key (and has no secret)
    valid = {"name": "EHR", "jwks": {"keys": public}, "scopes": ["system/Observation.rs"]}
    assert client.post("/v1/smart-clients", json=valid, headers=clinic.headers(Role.CLINICIAN)).status_code == 403


def test_clients_belong_to_their_clinic(client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys) -> None:
    client_id = register(client, clinic.headers(Role.ADMIN), ["system/Observation.rs"])
    intruder = other_clinic.headers(Role.ADMIN)
    assert client.get(f"/v1/smart-clients/{client_id}", headers=intruder).status_code == 404
    assert client.post(f"/v1/smart-clients/{client_id}/revoke", headers=intruder).status_code == 404
    assert client.get("/v1/smart-clients", headers=clinic.headers(Role.CLINICIAN)).status_code == 403
    own = client.get(f"/v1/smart-clients/{client_id}", headers=clinic.headers(Role.ADMIN))
    assert (own.status_code, own.json()["revoked_at"]) == (200, None)
