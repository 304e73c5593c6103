"""The CapabilityStatement lists exactly what the router serves."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from app.fhir.router import router


def served_interactions() -> set[tuple[str, str]]:
    """(resource type, interaction) for every route under /fhir, derived from paths and methods."""
    found = set()
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        parts = route.path.removeprefix("/fhir").strip("/").split("/")
        if parts[-1].startswith("$"):
            continue  # an operation (served_operations)
        for method in route.methods or set():
            if parts == [""]:
                found |= {("system", "transaction"), ("system", "batch")}
            elif parts == ["metadata"]:
                continue
            elif len(parts) == 1:
                found.add((parts[0], {"GET": "search-type", "POST": "create"}[method]))
            elif "_history" in parts:
                found.add((parts[0], "history-instance" if parts[-1] == "_history" else "vread"))
            else:
                found.add((parts[0], {"GET": "read", "PUT": "update"}[method]))
    return found


def served_operations() -> set[tuple[str, str]]:
    """(resource type, operation name) for every ``/fhir/<type>/$<name>`` route."""
    found = set()
    for route in router.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            parts = route.path.removeprefix("/fhir").strip("/").split("/")
            if parts[-1].startswith("$"):
                found.add((parts[0], parts[-1].removeprefix("$")))
    return found


def test_metadata_is_a_valid_r4_capability_statement_served_without_a_key(client: TestClient) -> None:
    response = client.get("/fhir/metadata")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert (statement["fhirVersion"], statement["kind"]) == ("4.0.1", "instance")
    assert statement["format"] == ["application/fhir+json", "json"]


def test_it_lists_exactly_the_interactions_the_router_serves(client: TestClient) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]

    listed = {(r["type"], i["code"]) for r in rest["resource"] for i in r["interaction"]}
    listed |= {("system", i["code"]) for i in rest["interaction"]}

    assert listed == served_interactions()


def test_it_lists_exactly_the_operations_the_router_serves_by_their_definitions(client: TestClient) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]

    listed = {(r["type"], o["name"]): o["definition"] for r in rest["resource"] for o in r.get("operation", [])}

    assert set(listed) == served_operations() == {("QuestionnaireResponse", "extract"), ("Measure", "evaluate-measure")}
    assert listed["QuestionnaireResponse", "extract"] == (
        "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract"
    )
    assert listed["Measure", "evaluate-measure"] == "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"


def test_each_search_documents_in_openapi_exactly_the_parameters_it_claims(client: TestClient) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]
    listed = {r["type"]: [p["name"] for p in r.get("searchParam", [])] for r in rest["resource"]}
    paths = client.get("/openapi.json").json()["paths"]

    documented = {
        path.removeprefix("/fhir/"): [
            p["name"] for p in operations["get"]["parameters"] if p["in"] == "query" and p["name"] != "_format"
        ]
        for path, operations in paths.items()
        if path.startswith("/fhir/") and path.count("/") == 2 and "get" in operations and path != "/fhir/metadata"
    }

    assert documented == {kind: names for kind, names in listed.items() if names}


def test_tasks_are_read_and_searched_by_patient_status_and_count(client: TestClient) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]

    [task] = [r for r in rest["resource"] if r["type"] == "Task"]

    assert [i["code"] for i in task["interaction"]] == ["read", "search-type"]
    assert [(p["name"], p["type"]) for p in task["searchParam"]] == [
        ("patient", "reference"),
        ("status", "token"),
        ("_count", "number"),
        ("_offset", "number"),
        ("_summary", "token"),
    ]
    assert "complete-questionnaire" in task["documentation"]


def test_conditional_create_is_claimed_where_it_is_honoured(client: TestClient) -> None:
    [rest] = client.get("/fhir/metadata").json()["rest"]

    claimed = {r["type"] for r in rest["resource"] if r["conditionalCreate"]}

    assert claimed == {"QuestionnaireResponse", "Patient"}
