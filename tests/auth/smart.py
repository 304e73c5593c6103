"""A SMART Backend Services client as an EHR's integration engine is one: its own key pairs (joserfc), registered
by a clinic's admin with the public halves, signing its own client assertions to get access tokens."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from app.auth.smart_tokens import ASSERTION_TYPE
from app.core.db import utcnow

RSA_KID = "rsa-2026"
EC_KID = "ec-2026"
KIDS = {"RS384": RSA_KID, "ES384": EC_KID}


@cache
def private_keys() -> dict[str, RSAKey | ECKey]:
    """The client's key pairs, by the algorithm each signs (made once per test run)."""
    return {
        "RS384": RSAKey.generate_key(2048, parameters={"kid": RSA_KID, "use": "sig"}),
        "ES384": ECKey.generate_key("P-384", parameters={"kid": EC_KID, "use": "sig"}),
    }


def public_jwks() -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in private_keys().values()]}


def token_endpoint(client: TestClient) -> str:
    configuration = client.get("/.well-known/smart-configuration")
    assert configuration.status_code == 200, configuration.text
    endpoint: str = configuration.json()["token_endpoint"]
    return endpoint


def register(client: TestClient, admin: dict[str, str], scopes: list[str], name: str = "EHR engine") -> str:
    """Register the client in the admin's clinic; its client_id."""
    response = client.post(
        "/v1/smart-clients", json={"name": name, "jwks": public_jwks(), "scopes": scopes}, headers=admin
    )
    assert response.status_code == 201, response.text
    client_id: str = response.json()["id"]
    return client_id


def assertion(
    client_id: str,
    aud: str,
    *,
    alg: str = "RS384",
    exp_in: float = 240,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    key: Any = None,
) -> str:
    """A client assertion signed as the client would sign it (``header``/``claims`` override what is sent). Its times
    come from the service's clock, which some tests freeze."""
    now = utcnow().timestamp()
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": int(now + exp_in),
        "iat": int(now),
        "jti": jti or str(uuid.uuid4()),
        **(claims or {}),
    }
    protected = {"alg": alg, "kid": KIDS.get(alg, RSA_KID), "typ": "JWT", **(header or {})}
    signing_key = key if key is not None else private_keys()[alg]
    return jwt.encode(protected, payload, signing_key, algorithms=[protected["alg"]])


def request_token(client: TestClient, signed: str, scope: str, **extra: str) -> Response:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        **extra,
    }
    return client.post("/v1/smart/token", data=form)


def access_token(client: TestClient, client_id: str, scope: str, *, alg: str = "RS384") -> str:
    response = request_token(client, assertion(client_id, token_endpoint(client), alg=alg), scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
