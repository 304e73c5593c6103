"""A SMART Backend Services client against the real server: it signs its own assertion (joserfc), gets a token at
the endpoint the server advertises, and with fhirpy posts a QuestionnaireResponse and reads its Observations, which
is all its scopes allow."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

from app.auth.smart_tokens import ASSERTION_TYPE
from tests.auth.smart import assertion, public_jwks
from tests.fhir.clients.conftest import Live, phq9_response

SCOPES = "system/QuestionnaireResponse.c system/Observation.rs"


def smart_token(live: Live) -> str:
    """Register the client as the clinic's admin, then get a token as the client would: discovery, then a
    ``client_credentials`` grant with a signed ``private_key_jwt`` assertion."""
    origin = live.base.removesuffix("/fhir")
    admin = {"Authorization": f"Bearer {live.key}"}
    registered = httpx2.post(
        f"{origin}/v1/smart-clients",
        json={"name": "live EHR engine", "jwks": public_jwks(), "scopes": SCOPES.split()},
        headers=admin,
    )
    assert registered.status_code == 201, registered.text
    discovery = httpx2.get(f"{live.base}/.well-known/smart-configuration").json()
    form = {
        "grant_type": "client_credentials",
        "scope": SCOPES,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(registered.json()["id"], discovery["token_endpoint"]),
    }
    granted = httpx2.post(f"{origin}/v1/smart/token", data=form)
    assert granted.status_code == 200, granted.text
    assert sorted(granted.json()["scope"].split()) == sorted(SCOPES.split())
    token: str = granted.json()["access_token"]
    return token


def test_a_smart_backend_client_posts_a_response_and_reads_its_observations_and_nothing_more(live: Live) -> None:
    admin = SyncFHIRClient(live.base, authorization=f"Bearer {live.key}")
    patient = admin.resource("Patient", identifier=[{"system": "urn:test:smart", "value": str(uuid.uuid4())}])
    patient.save()
    token = smart_token(live)
    smart = SyncFHIRClient(live.base, authorization=f"Bearer {token}")

    response = smart.resource("QuestionnaireResponse", **phq9_response(str(patient.id), "2026-11-20T09:30:00+01:00"))
    response.save()
    observations = smart.resources("Observation").search(patient=f"Patient/{patient.id}").fetch_all()
    with pytest.raises(ForbiddenError) as refused:
        smart.resource("Patient", identifier=[{"system": "urn:test:smart", "value": "refused"}]).save()
    outside = httpx2.get(f"{live.base.removesuffix('/fhir')}/v1/patients", headers={"Authorization": f"Bearer {token}"})

    assert response.id
    assert observations
    assert {str(observation["subject"]["reference"]) for observation in observations} == {f"Patient/{patient.id}"}
    assert "system/Patient.c" in str(refused.value)
    assert outside.status_code == 403
