"""EHRs push their patients first: POST (optionally conditional) and PUT by id, identifiers only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.patient import Patient
from sqlalchemy.orm import Session

from app.auth.permissions import Role
from app.core.errors import NotFound
from app.patients import service as patient_service
from app.patients.models import Patient as PatientRow
from tests.conftest import ClinicKeys
from tests.fhir.conftest import headers, issues, send

MRN = "urn:oid:2.16.840.1.113883.19.5"


def patient(*mrns: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn} for mrn in mrns], **extra}


def test_a_posted_patient_gets_the_api_patient_id_and_keeps_its_identifiers(
    client: TestClient, clinic: ClinicKeys
) -> None:
    created = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-7", name=[{"family": "Not stored"}]))

    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    assert created.headers["location"] == f"http://testserver/fhir/Patient/{patient_id}"
    api = client.get(f"/v1/patients/{patient_id}", headers=clinic.headers()).json()
    assert api["identifiers"] == [{"system": MRN, "value": "MRN-7"}]
    read = client.get(f"/fhir/Patient/{patient_id}", headers=headers(clinic)).json()
    Patient.model_validate(read)
    assert read["identifier"] == [{"system": MRN, "value": "MRN-7"}]
    assert "name" not in read  # only identifiers are stored


def test_a_conditional_create_returns_the_existing_patient(client: TestClient, clinic: ClinicKeys) -> None:
    condition = f"identifier={MRN}|MRN-8"

    first = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-8"), if_none_exist=condition)
    again = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-8"), if_none_exist=condition)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_conditional_criteria_must_name_one_of_the_patients_identifiers(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-9"), if_none_exist=f"identifier={MRN}|other")

    assert response.status_code == 400


def test_put_by_id_creates_then_replaces_the_identifiers(client: TestClient, clinic: ClinicKeys) -> None:
    patient_id = str(uuid.uuid4())

    created = send(client, "PUT", f"/fhir/Patient/{patient_id}", clinic, patient("MRN-10", id=patient_id))
    replaced = send(client, "PUT", f"/fhir/Patient/{patient_id}", clinic, patient("MRN-10", "MRN-11", id=patient_id))
    trimmed = send(client, "PUT", f"/fhir/Patient/{patient_id}", clinic, patient("MRN-11", id=patient_id))

    assert (created.status_code, replaced.status_code, trimmed.status_code) == (201, 200, 200)
    assert created.json()["id"] == patient_id
    assert [i["value"] for i in replaced.json()["identifier"]] == ["MRN-10", "MRN-11"]
    assert [i["value"] for i in trimmed.json()["identifier"]] == ["MRN-11"]


def test_a_put_whose_url_id_differs_from_the_resource_id_is_a_400(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "PUT", f"/fhir/Patient/{uuid.uuid4()}", clinic, patient("MRN-12", id=str(uuid.uuid4())))

    assert response.status_code == 400
    assert issues(response)[0]["expression"] == ["Patient.id"]


def test_patient_ids_are_uuids(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "PUT", "/fhir/Patient/example", clinic, patient("MRN-13", id="example"))

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["Patient.id"]


def test_another_clinics_patient_can_be_neither_read_nor_taken(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    theirs = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]

    read = client.get(f"/fhir/Patient/{theirs}", headers=headers(clinic))
    put = send(client, "PUT", f"/fhir/Patient/{theirs}", clinic, patient("MRN-14", id=theirs))

    assert read.status_code == 404
    assert put.status_code == 404
    assert client.get(f"/v1/patients/{theirs}", headers=other_clinic.headers()).json()["identifiers"] == []


def test_identifiers_need_a_system_and_a_value(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(
        client, "POST", "/fhir/Patient", clinic, {"resourceType": "Patient", "identifier": [{"value": "x"}]}
    )

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["Patient.identifier[0]"]


def test_an_identifier_of_another_patient_is_a_conflict(client: TestClient, clinic: ClinicKeys) -> None:
    send(client, "POST", "/fhir/Patient", clinic, patient("MRN-15"))

    response = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-15"))

    assert response.status_code == 409


def test_writing_patients_needs_the_patients_permission(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-16"), role=Role.RESEARCHER)

    assert response.status_code == 403


def test_a_put_racing_another_put_of_the_same_new_id_answers_200_or_201_never_404(
    client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical PUTs of a new id: the second read the id as free just before the first committed it. It then
    finds it taken, either when it reads it again or when its own insert collides; neither is another clinic's."""
    real_get = patient_service.get
    new_id = str(uuid.uuid4())
    body = patient("MRN-RACE-1") | {"id": new_id}
    first = send(client, "PUT", f"/fhir/Patient/{new_id}", clinic, body)

    def read_before_the_other_committed(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(patient_service, "get", real_get)
        raise NotFound("not yet committed")

    monkeypatch.setattr(patient_service, "get", read_before_the_other_committed)
    second = send(client, "PUT", f"/fhir/Patient/{new_id}", clinic, body)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == new_id


def test_a_put_whose_insert_collides_with_a_concurrent_one_updates_what_that_one_stored(
    client: TestClient, clinic: ClinicKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both reads of the id miss it (the other PUT had not committed yet), its own insert then collides with the
    other's committed row: it reads the id once more and updates that patient (200), as a PUT of an existing id does."""
    new_id = str(uuid.uuid4())
    body = patient("MRN-RACE-2") | {"id": new_id}
    first = send(client, "PUT", f"/fhir/Patient/{new_id}", clinic, body)
    real_get = patient_service.get
    original_session_get = Session.get
    misses = {"session": 1}

    def first_read_misses(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(patient_service, "get", real_get)
        raise NotFound("not yet committed")

    def session_get(self: Session, entity: Any, ident: Any, **kwargs: Any) -> Any:
        if entity is PatientRow and misses["session"]:  # the holder check, just before the other PUT committed
            misses["session"] -= 1
            return None
        return original_session_get(self, entity, ident, **kwargs)

    monkeypatch.setattr(patient_service, "get", first_read_misses)
    monkeypatch.setattr(Session, "get", session_get)
    second = send(client, "PUT", f"/fhir/Patient/{new_id}", clinic, patient("MRN-RACE-2", "MRN-RACE-3", id=new_id))
    monkeypatch.undo()

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json()["id"] == new_id
    assert len(client.get(f"/fhir/Patient/{new_id}", headers=clinic.headers()).json()["identifier"]) == 2


def test_a_put_of_a_new_id_whose_identifier_another_patient_holds_is_a_409_that_says_why(
    client: TestClient, clinic: ClinicKeys
) -> None:
    holder = send(client, "POST", "/fhir/Patient", clinic, patient("MRN-HELD"))
    new_id = str(uuid.uuid4())
    taken = send(client, "PUT", f"/fhir/Patient/{new_id}", clinic, patient("MRN-HELD") | {"id": new_id})

    assert (holder.status_code, taken.status_code) == (201, 409)
    assert "holds one of its identifiers" in taken.json()["issue"][0]["diagnostics"]
    assert client.get(f"/fhir/Patient/{new_id}", headers=clinic.headers()).status_code == 404
