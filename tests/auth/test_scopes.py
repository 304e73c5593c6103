"""SMART system scopes: parsed in v2 and v1 syntax, narrowed to what a client is allowed, mapped onto the FHIR routes'
interactions and the permissions those routes require."""

from __future__ import annotations

import pytest

from app.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from app.auth.scopes import Scope, SmartGrants, grant, parse, route_interaction
from app.core.errors import PermissionDenied


def scopes(*texts: str) -> list[Scope]:
    parsed = [parse(text) for text in texts]
    assert None not in parsed
    return [scope for scope in parsed if scope is not None]


def test_v2_and_v1_system_scopes_are_understood_and_nothing_else() -> None:
    assert parse("system/Observation.rs") == Scope("Observation", "rs")
    assert parse("system/QuestionnaireResponse.c") == Scope("QuestionnaireResponse", "c")
    assert parse("system/*.cruds") == Scope("*", "cruds")
    assert parse("system/Patient.read") == Scope("Patient", "rs")
    assert parse("system/Patient.write") == Scope("Patient", "cud")
    assert parse("system/Patient.*") == Scope("Patient", "cruds")
    refused = [
        "patient/Observation.rs",  # no patient context in a backend service
        "user/*.cruds",
        "system/Observation.sr",  # letters out of order
        "system/Observation.rx",
        "system/Encounter.rs",  # a type this server does not serve
        "system/Observation.rs?category=laboratory",
        "launch/patient",
        "openid",
    ]
    assert [parse(text) for text in refused] == [None] * len(refused)


def test_what_is_granted_is_what_was_asked_and_allowed() -> None:
    allowed = scopes("system/QuestionnaireResponse.c", "system/Observation.rs")
    assert [str(s) for s in grant(scopes("system/*.cruds"), allowed)] == [
        "system/Observation.rs",
        "system/QuestionnaireResponse.c",
    ]
    assert [str(s) for s in grant(scopes("system/Observation.read"), allowed)] == ["system/Observation.rs"]
    assert grant(scopes("system/Patient.cruds", "system/QuestionnaireResponse.r"), allowed) == []
    wide = scopes("system/*.rs")
    assert [str(s) for s in grant(scopes("system/Task.s", "system/*.r"), wide)] == ["system/*.r", "system/Task.s"]


@pytest.mark.parametrize(
    ("method", "segments", "expected"),
    [
        ("GET", ["Observation"], ("Observation", "s")),
        ("POST", ["Observation", "_search"], ("Observation", "s")),
        ("GET", ["Observation", "{observation_id}"], ("Observation", "r")),
        ("GET", ["Observation", "{id}", "_history", "{vid}"], ("Observation", "r")),
        ("GET", ["Observation", "{id}", "_history"], ("Observation", "r")),
        ("POST", ["QuestionnaireResponse"], ("QuestionnaireResponse", "c")),
        ("PUT", ["Patient", "{patient_id}"], ("Patient", "u")),
        ("DELETE", ["Patient", "{patient_id}"], ("Patient", "d")),
        ("POST", ["QuestionnaireResponse", "$extract"], None),
        ("POST", ["QuestionnaireResponse", "{id}", "$extract"], None),
        ("PUT", ["Observation"], None),
    ],
)
def test_each_fhir_route_is_one_interaction_or_refused(
    method: str, segments: list[str], expected: tuple[str, str] | None
) -> None:
    assert route_interaction(method, segments) == expected


def test_a_token_is_held_to_fhir_and_to_its_scopes() -> None:
    grants = SmartGrants.of("system/Observation.rs system/QuestionnaireResponse.c")
    grants.require_route("GET", "/fhir/Observation")
    grants.require_route("POST", "/fhir/QuestionnaireResponse")
    grants.require_route("POST", "/fhir")  # a Bundle: its entries are checked one by one
    grants.require_entry("POST", "QuestionnaireResponse")
    refused = [
        ("GET", "/v1/patients"),
        ("GET", "/v1/instruments"),
        ("POST", "/fhir/Patient"),
        ("GET", "/fhir/QuestionnaireResponse/{response_id}"),
        ("PUT", "/fhir/QuestionnaireResponse/{response_id}"),
        ("GET", "/fhir/Task"),
        ("POST", "/fhir/QuestionnaireResponse/$extract"),
    ]
    for method, template in refused:
        with pytest.raises(PermissionDenied):
            grants.require_route(method, template)
    grants.require_entry("GET", "Observation/1")
    for method, url in [("POST", "Patient"), ("PUT", "QuestionnaireResponse/abc"), ("GET", "Task?patient=1")]:
        with pytest.raises(PermissionDenied):
            grants.require_entry(method, url)
    assert grants.permissions == {Permission.MEASUREMENTS_READ, Permission.MEASUREMENTS_WRITE}


def test_no_scope_grants_more_than_an_integration_key() -> None:
    everything = SmartGrants.of("system/*.cruds").permissions
    assert everything == ROLE_PERMISSIONS[Role.SMART_CLIENT]
    assert everything <= ROLE_PERMISSIONS[Role.INTEGRATION]
