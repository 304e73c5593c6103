from __future__ import annotations

from fastapi.testclient import TestClient


def test_health_reports_a_reachable_database(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    assert response.json()["status"] == "pass"


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/v1/patients/{patient_id}/measurements/{measurement_id}/amend" in schema["paths"]


def test_unknown_routes_are_problem_documents(client: TestClient) -> None:
    response = client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
