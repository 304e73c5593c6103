"""Research projects and consent (issue 22): a project's researcher key exports exactly the patients its consent model
allows, at the time of the export; a withdrawal after an export is listed with the project's pseudonym."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.research.generator import CohortConfig
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.research.conftest import (
    Project,
    consent,
    expected_pseudonym,
    measure,
    new_patient,
    new_project,
    store_cohort,
)

DECEMBER_1 = datetime(2026, 12, 1, 9, tzinfo=UTC)
DECEMBER_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Three:
    """Three measured patients of one clinic."""

    a: str
    b: str
    c: str


@pytest.fixture
def frozen() -> Iterator[None]:
    with CLOCK.frozen_at(DECEMBER_1):
        yield


@pytest.fixture
def three(client: TestClient, clinic: ClinicKeys, frozen: None) -> Three:
    patients = [new_patient(client, clinic) for _ in range(3)]
    for patient in patients:
        measure(client, clinic, patient, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z")
    return Three(*patients)


def exported_pseudonyms(client: TestClient, headers: dict[str, str], **params: str) -> set[str]:
    response = client.get("/v1/research/export", params={"instruments": "phq9", **params}, headers=headers)
    assert response.status_code == 200, response.text
    frame = pd.read_csv(io.BytesIO(response.content), dtype={"patient_id": str})
    return set(frame["patient_id"])


def withdrawals(client: TestClient, project: Project, headers: dict[str, str] | None = None) -> list[dict[str, str]]:
    response = client.get(f"/v1/research/projects/{project.id}/withdrawals", headers=headers or project.headers)
    assert response.status_code == 200, response.text
    listed: list[dict[str, str]] = response.json()
    return listed


def test_an_opt_in_project_exports_exactly_the_consenting_patients_and_lists_a_withdrawal(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.a, project, "granted", "2026-11-30T10:00:00Z")
    consent(client, clinic, three.b, project, "granted", "2026-11-29T10:00:00Z")
    consent(client, clinic, three.b, project, "refused", "2026-11-30T10:00:00Z")  # the latest decision counts
    # C was never asked: not in an opt-in project's export.

    assert exported_pseudonyms(client, project.headers) == {expected_pseudonym(app, project, three.a)}
    assert withdrawals(client, project) == []

    CLOCK.move_to(DECEMBER_3)
    consent(client, clinic, three.a, project, "withdrawn", "2026-12-02T15:00:00Z")

    assert exported_pseudonyms(client, project.headers) == set()
    assert withdrawals(client, project) == [
        {
            "pseudonym": expected_pseudonym(app, project, three.a),
            "status": "withdrawn",
            "recorded_at": "2026-12-02T15:00:00Z",
            "last_export_at": "2026-12-01T09:00:00Z",
        }
    ]


def test_an_opt_out_project_exports_everyone_but_those_who_object(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_out")
    consent(client, clinic, three.a, project, "refused", "2026-11-30T10:00:00Z")
    consent(client, clinic, three.c, project, "granted", "2026-11-30T10:00:00Z")

    pseudonym = {patient: expected_pseudonym(app, project, patient) for patient in (three.a, three.b, three.c)}
    assert exported_pseudonyms(client, project.headers) == {pseudonym[three.b], pseudonym[three.c]}

    CLOCK.move_to(DECEMBER_3)
    consent(client, clinic, three.b, project, "refused", "2026-12-03T08:00:00Z")
    consent(client, clinic, three.c, project, "withdrawn", "2026-12-02T08:00:00Z")

    assert exported_pseudonyms(client, project.headers) == set()
    # A refused before any export: never exported, never listed. B objected, C withdrew: both were exported.
    assert [(entry["pseudonym"], entry["status"]) for entry in withdrawals(client, project)] == [
        (pseudonym[three.c], "withdrawn"),
        (pseudonym[three.b], "refused"),
    ]


def test_a_patient_who_consents_again_leaves_the_withdrawals_and_returns_to_the_export(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.a, project, "granted", "2026-11-30T10:00:00Z")
    exported_pseudonyms(client, project.headers)
    CLOCK.move_to(DECEMBER_3)
    consent(client, clinic, three.a, project, "withdrawn", "2026-12-02T10:00:00Z")
    assert len(withdrawals(client, project)) == 1

    consent(client, clinic, three.a, project, "granted", "2026-12-03T08:00:00Z")

    assert withdrawals(client, project) == []
    assert exported_pseudonyms(client, project.headers) == {expected_pseudonym(app, project, three.a)}


def test_a_withdrawal_before_any_export_is_not_listed(client: TestClient, clinic: ClinicKeys, three: Three) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.a, project, "granted", "2026-11-20T10:00:00Z")
    consent(client, clinic, three.a, project, "withdrawn", "2026-11-25T10:00:00Z")

    exported_pseudonyms(client, project.headers)

    assert withdrawals(client, project) == []


def test_every_export_path_and_the_analysis_follow_the_consent(
    client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.a, project, "granted", "2026-11-30T10:00:00Z")
    one = exported_pseudonyms(client, project.headers)
    assert len(one) == 1

    for export_format in ("parquet", "sav", "dta"):
        for layout in ("long", "wide"):
            params = {"instruments": "phq9", "format": export_format, "layout": layout}
            response = client.get("/v1/research/export", params=params, headers=project.headers)
            assert response.status_code == 200, response.text
            assert next(iter(one)).encode() in response.content, (export_format, layout)
    wide_csv = exported_pseudonyms(client, project.headers, layout="wide", level="items")
    assert wide_csv == one


def test_the_analysis_sees_only_the_consenting_patients(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    store_cohort(app, clinic, CohortConfig(patients=8, weeks=8), seed=7)
    project = new_project(client, clinic, consent_model="opt_in")
    patients = client.get("/v1/patients", params={"limit": 100}, headers=clinic.headers()).json()["items"]
    question = {"outcome": "phq9.total", "predictors": ["scs_sf.total"], "method": "within"}

    def analysed() -> int:
        response = client.post("/v1/research/lagged-effects", json=question, headers=project.headers)
        assert response.status_code == 200, response.text
        n_patients: int = response.json()["n_patients"]
        return n_patients

    nobody = client.post("/v1/research/lagged-effects", json=question, headers=project.headers)
    assert nobody.status_code == 422
    assert nobody.json()["detail"].startswith("not enough data for the analysis: 0 patient(s)")
    for patient in patients[:5]:
        consent(client, clinic, patient["id"], project, "granted", "2026-11-30T10:00:00Z")
    assert len(patients) == 8
    assert analysed() == 5


def test_the_identified_export_is_the_clinics_unless_a_project_is_named(
    client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.b, project, "granted", "2026-11-30T10:00:00Z")
    admin = clinic.headers(Role.ADMIN)

    def identified(**params: str) -> set[str]:
        response = client.get("/v1/research/export/identified", params={"instruments": "phq9", **params}, headers=admin)
        assert response.status_code == 200, response.text
        return set(pd.read_csv(io.BytesIO(response.content), dtype={"patient_id": str})["patient_id"])

    assert identified() == {three.a, three.b, three.c}
    assert identified(project=project.name) == {three.b}


def test_an_admin_names_the_project_of_a_de_identified_export(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, three: Three
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, three.c, project, "granted", "2026-11-30T10:00:00Z")
    admin = clinic.headers(Role.ADMIN)

    unnamed = client.get("/v1/research/export", headers=admin)
    named = exported_pseudonyms(client, admin, project=project.name)

    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "project"
    assert named == {expected_pseudonym(app, project, three.c)}
    assert client.get("/v1/research/export", params={"project": "nothing-here"}, headers=admin).status_code == 404
    codebook = client.get("/v1/research/codebook", headers=admin)
    assert codebook.status_code == 200  # no data in it: an administrator need not name a project
    assert "researchProject" not in codebook.json()
    named_codebook = client.get("/v1/research/codebook", params={"project": project.name}, headers=admin)
    assert named_codebook.json()["researchProject"]["consentModel"] == "opt_in"


def test_a_researcher_key_reaches_its_own_project_only(client: TestClient, clinic: ClinicKeys) -> None:
    ours = new_project(client, clinic, name="ours")
    theirs = new_project(client, clinic, name="theirs")

    listed = client.get("/v1/research/projects", headers=ours.headers).json()
    assert [project["name"] for project in listed] == ["ours"]
    assert client.get(f"/v1/research/projects/{theirs.id}", headers=ours.headers).status_code == 404
    assert client.get(f"/v1/research/projects/{theirs.id}/withdrawals", headers=ours.headers).status_code == 404
    named = client.get("/v1/research/export", params={"project": "theirs"}, headers=ours.headers)
    assert named.status_code == 403
    codebook = client.get("/v1/research/codebook", params={"project": "theirs"}, headers=ours.headers)
    assert codebook.status_code == 403
    own = client.get("/v1/research/codebook", headers=ours.headers)
    assert own.json()["researchProject"] == {
        "name": "ours",
        "ethicsReference": "REK 2026/123",
        "consentModel": "opt_out",
    }


def test_a_researcher_key_without_a_project_reaches_no_data(client: TestClient, clinic: ClinicKeys) -> None:
    """Researcher keys issued before projects existed keep no project: they export nothing, not everyone."""
    new_project(client, clinic)
    legacy = clinic.headers(Role.RESEARCHER)

    for response in (
        client.get("/v1/research/export", headers=legacy),
        client.get("/v1/research/export", params={"project": "study"}, headers=legacy),
        client.get("/v1/research/codebook", headers=legacy),
        client.post(
            "/v1/research/lagged-effects",
            json={"outcome": "phq9.total", "predictors": ["gad7.total"]},
            headers=legacy,
        ),
    ):
        assert response.status_code == 403, response.text
        assert "no research project" in response.json()["detail"]
    assert client.get("/v1/research/projects", headers=legacy).json() == []


def test_researcher_keys_are_issued_for_a_project_of_the_clinic(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    admin = clinic.headers(Role.ADMIN)
    theirs = new_project(client, other_clinic)

    without = client.post("/v1/api-keys", json={"role": "researcher"}, headers=admin)
    foreign = client.post("/v1/api-keys", json={"role": "researcher", "research_project_id": theirs.id}, headers=admin)
    ours = new_project(client, clinic)
    clinician = client.post("/v1/api-keys", json={"role": "clinician", "research_project_id": ours.id}, headers=admin)

    assert without.status_code == 422
    assert without.json()["errors"][0]["field"] == "research_project_id"
    assert foreign.status_code == 404
    assert clinician.status_code == 422
    keys = client.get("/v1/api-keys", headers=admin).json()["items"]
    assert [key["research_project_id"] for key in keys if key["role"] == "researcher"].count(ours.id) == 1


def test_another_clinics_project_is_not_found(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    theirs = new_project(client, other_clinic)
    admin = clinic.headers(Role.ADMIN)

    assert client.get(f"/v1/research/projects/{theirs.id}", headers=admin).status_code == 404
    assert client.get(f"/v1/research/projects/{theirs.id}/withdrawals", headers=admin).status_code == 404
    put = client.put(f"/v1/patients/{patient_id}/consents/{theirs.id}", json={"status": "granted"}, headers=admin)
    assert put.status_code == 404
    assert client.get("/v1/research/projects", headers=admin).json() == []


def test_a_project_name_is_unique_in_its_clinic(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    new_project(client, clinic, name="cft-2027")
    new_project(client, other_clinic, name="cft-2027")
    body = {"name": "cft-2027", "purpose": "Again.", "ethics_reference": "REK 1", "consent_model": "opt_in"}

    again = client.post("/v1/research/projects", json=body, headers=clinic.headers(Role.ADMIN))
    by_clinician = client.post("/v1/research/projects", json=body | {"name": "x"}, headers=clinic.headers())
    bad_model = client.post(
        "/v1/research/projects",
        json=body | {"name": "y", "consent_model": "presumed"},
        headers=clinic.headers(Role.ADMIN),
    )

    assert again.status_code == 409
    assert by_clinician.status_code == 403
    assert bad_model.status_code == 422
    assert bad_model.json()["errors"][0]["field"] == "consent_model"


def test_consent_keeps_its_history_and_refuses_the_future(
    client: TestClient, clinic: ClinicKeys, patient_id: str, frozen: None
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    consent(client, clinic, patient_id, project, "granted", "2026-11-20T10:00:00Z")
    recorded = client.put(
        f"/v1/patients/{patient_id}/consents/{project.id}",
        json={"status": "withdrawn", "note": "Asked by phone."},
        headers=clinic.headers(),
    )
    future = client.put(
        f"/v1/patients/{patient_id}/consents/{project.id}",
        json={"status": "granted", "recorded_at": "2026-12-01T09:00:01Z"},
        headers=clinic.headers(),
    )
    wrong = client.put(
        f"/v1/patients/{patient_id}/consents/{project.id}", json={"status": "maybe"}, headers=clinic.headers()
    )

    assert recorded.status_code == 200
    assert recorded.json()["recorded_at"] == "2026-12-01T09:00:00Z"  # now, when left out
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "recorded_at"
    assert wrong.status_code == 422
    listed = client.get(f"/v1/patients/{patient_id}/consents", headers=clinic.headers()).json()
    assert [(row["status"], row["note"]) for row in listed["history"]] == [
        ("granted", None),
        ("withdrawn", "Asked by phone."),
    ]
    [state] = listed["projects"]
    assert (state["project"]["id"], state["status"], state["included"]) == (project.id, "withdrawn", False)
    researcher = client.get(f"/v1/patients/{patient_id}/consents", headers=project.headers)
    assert researcher.status_code == 403


def test_a_patient_token_reads_and_changes_its_own_consent_only(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    project = new_project(client, clinic, consent_model="opt_in")
    other = new_patient(client, clinic)
    code = client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=clinic.headers()).json()["code"]
    token = {"Authorization": f"Bearer {client.post('/v1/enrolments/exchange', json={'code': code}).json()['token']}"}

    granted = client.put(f"/v1/me/consents/{project.id}", json={"status": "granted"}, headers=token)
    mine = client.get("/v1/me/consents", headers=token).json()
    theirs = client.put(f"/v1/patients/{other}/consents/{project.id}", json={"status": "granted"}, headers=token)
    read_theirs = client.get(f"/v1/patients/{other}/consents", headers=token)

    assert granted.status_code == 200
    assert granted.json()["patient_id"] == patient_id
    [state] = mine["projects"]
    assert (state["project"]["purpose"], state["status"], state["included"]) == ("Outcomes of CFT.", "granted", True)
    assert theirs.status_code in (403, 404)
    assert read_theirs.status_code in (403, 404)
    assert client.get(f"/v1/patients/{other}/consents", headers=clinic.headers()).json()["history"] == []
    assert client.get("/v1/me/consents", headers=clinic.headers(Role.ADMIN)).status_code == 422


def test_every_consent_change_is_audited_with_its_patient(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    project = new_project(client, clinic)
    consent(client, clinic, patient_id, project, "refused", "2026-11-20T10:00:00Z")

    response = client.get("/v1/audit", params={"patient_id": patient_id}, headers=clinic.headers(Role.ADMIN))

    routes = [(event["method"], event["route"], event["status_code"]) for event in response.json()["items"]]
    assert ("PUT", "/v1/patients/{patient_id}/consents/{project_id}", 200) in routes
