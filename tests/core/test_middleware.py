"""Limits and hygiene: security headers, CORS closed by default, per-key rate limits, a body size limit."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.limits import RateLimiter
from app.main import create_app
from tests.conftest import ClinicKeys, make_settings, new_clinic


def test_every_response_carries_security_headers(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/v1/patients", headers=clinic.headers())

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/v1/patients",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_configured_origins(database_url: str) -> None:
    app = create_app(make_settings(database_url, cors_origins=["https://app.clinic.example"]))
    with TestClient(app) as client:
        allowed = client.options(
            "/v1/patients",
            headers={"Origin": "https://app.clinic.example", "Access-Control-Request-Method": "POST"},
        )
        refused = client.options(
            "/v1/patients",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )

    assert allowed.headers["access-control-allow-origin"] == "https://app.clinic.example"
    assert "access-control-allow-origin" not in refused.headers


def test_a_caller_over_its_rate_limit_gets_429_with_retry_after(database_url: str) -> None:
    app = create_app(make_settings(database_url, rate_limit_per_minute=60, rate_limit_burst=3), monotonic=lambda: 0.0)
    with TestClient(app) as client:
        clinic = new_clinic(app)
        statuses = [client.get("/v1/instruments", headers=clinic.headers()).status_code for _ in range(5)]
        other_key = client.get("/v1/instruments", headers=clinic.headers(Role.INTEGRATION)).status_code
        refused = client.get("/v1/instruments", headers=clinic.headers())

    assert statuses == [200, 200, 200, 429, 429]
    assert other_key == 200
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1


def test_the_token_bucket_refills_with_time() -> None:
    limiter = RateLimiter(per_minute=60, burst=1)

    assert limiter.allow("k", now=0.0) == 0
    assert limiter.allow("k", now=0.5) > 0
    assert limiter.allow("k", now=1.5) == 0
    assert limiter.allow("other", now=1.5) == 0


def test_an_oversized_body_is_a_413_problem(database_url: str) -> None:
    app = create_app(make_settings(database_url, max_body_bytes=1024))
    with TestClient(app) as client:
        clinic = new_clinic(app)
        response = client.post(
            "/v1/patients", content=b'{"external_id": "' + b"x" * 2000 + b'"}', headers=clinic.headers()
        )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_under_fhir_an_oversized_body_is_a_413_operation_outcome(database_url: str) -> None:
    app = create_app(make_settings(database_url, max_body_bytes=1024))
    body = b'{"resourceType": "Patient", "id": "' + b"x" * 2000 + b'"}'
    with TestClient(app) as client:
        clinic = new_clinic(app)
        response = client.post(
            "/fhir/Patient", content=body, headers={**clinic.headers(), "Content-Type": "application/fhir+json"}
        )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/fhir+json")
    [issue] = response.json()["issue"]
    assert (response.json()["resourceType"], issue["code"]) == ("OperationOutcome", "too-costly")
    assert "1024 bytes" in issue["diagnostics"]


def test_under_fhir_a_caller_over_its_rate_limit_gets_a_429_operation_outcome(database_url: str) -> None:
    app = create_app(make_settings(database_url, rate_limit_per_minute=60, rate_limit_burst=1), monotonic=lambda: 0.0)
    with TestClient(app) as client:
        clinic = new_clinic(app)
        allowed = client.get("/fhir/Questionnaire", headers=clinic.headers())
        refused = client.get("/fhir/Questionnaire", headers=clinic.headers())

    assert allowed.status_code == 200
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/fhir+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert [issue["code"] for issue in refused.json()["issue"]] == ["throttled"]


def test_a_streamed_body_over_the_limit_is_a_413_problem(database_url: str) -> None:
    app = create_app(make_settings(database_url, max_body_bytes=1024))

    def chunks() -> Iterator[bytes]:
        yield b'{"external_id": "'
        for _ in range(40):
            yield b"x" * 100
        yield b'"}'

    with TestClient(app) as client:
        clinic = new_clinic(app)
        response = client.post("/v1/patients", content=chunks(), headers=clinic.headers())

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
