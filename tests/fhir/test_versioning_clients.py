"""Versioning as the two most used Python FHIR clients meet it, against the real server (uvicorn, a freshly
migrated database of the backend under test): fhirpy reads, refreshes (If-None-Match) and saves with If-Match, and a
stale save is refused with 412; fhirclient vreads a response and its Observation as they were."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fhirclient.models.observation import Observation
from fhirclient.models.questionnaireresponse import QuestionnaireResponse
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound
from sqlalchemy.engine import make_url

from app.auth.permissions import Role
from tests.conftest import ClinicKeys
from tests.reliability.live_server import LiveServer, clinic_with_keys, fresh_database

LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
"""LOINC answers of the PHQ-9 items, scored 0 to 3."""


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, ClinicKeys]]:
    backend = make_url(database_url).get_backend_name()
    directory = tmp_path_factory.mktemp(f"versions-{backend}")
    with fresh_database(backend, directory) as url:
        server = LiveServer(database_url=url, log_path=directory / "server.log")
        server.start()
        try:
            yield server, clinic_with_keys(url, "versioning clinic")
        finally:
            server.stop()


def items(answer: int) -> list[dict[str, Any]]:
    return [
        {"linkId": str(n), "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LA[answer]}}]}
        for n in range(1, 10)
    ]


def fhirpy_client(base: str, clinic: ClinicKeys, **headers: str) -> SyncFHIRClient:
    return SyncFHIRClient(base, authorization=f"Bearer {clinic.keys[Role.ADMIN]}", extra_headers=headers)


def test_fhirpy_saves_with_if_match_a_stale_save_gets_412_and_fhirclient_vreads(
    live: tuple[LiveServer, ClinicKeys],
) -> None:
    server, clinic = live
    base = f"{server.base_url}/fhir"
    fhir = fhirpy_client(base, clinic)
    patient = fhir.resource("Patient", identifier=[{"system": "urn:mrn", "value": "LIVE-1"}])
    patient.save()
    response = fhir.resource(
        "QuestionnaireResponse",
        id="live-1",
        questionnaire="urn:compassion-outcomes:questionnaire:phq9",
        status="completed",
        subject={"reference": f"Patient/{patient.id}"},
        authored="2026-11-20T09:30:00+01:00",
        item=items(1),
    )
    response.save()
    assert response["meta"]["versionId"] == "1"
    response.refresh()  # If-None-Match: 1, answered 304: the copy is kept
    assert response["item"] == items(1)

    # Two clients read version 1 and each saves its change naming it: the first is stored, the second refused.
    alice = fhirpy_client(base, clinic, **{"If-Match": 'W/"1"'})
    bob = fhirpy_client(base, clinic, **{"If-Match": 'W/"1"'})
    hers = alice.reference("QuestionnaireResponse", "live-1").to_resource()
    his = bob.reference("QuestionnaireResponse", "live-1").to_resource()
    hers["item"] = items(2)
    hers.save()
    his["item"] = items(3)
    with pytest.raises(MultipleResourcesFound, match="version 2"):  # fhirpy's name for any 412
        his.save()

    assert hers["meta"]["versionId"] == "2"
    assert fhir.reference("QuestionnaireResponse", "live-1").to_resource()["item"] == items(2)
    vread = fhir.reference("QuestionnaireResponse", "live-1").execute("_history/1", method="get")
    assert (vread["meta"]["versionId"], vread["item"]) == ("1", items(1))

    found = fhir.resources("Observation").search(subject=f"Patient/{patient.id}", code="http://loinc.org|44261-6")
    [total] = found.fetch()
    smart = FHIRServer(None, base_uri=base)
    smart.session.headers["Authorization"] = f"Bearer {clinic.keys[Role.ADMIN]}"
    old_response = QuestionnaireResponse.read_from("QuestionnaireResponse/live-1/_history/1", smart)
    old_total = Observation.read_from(f"Observation/{total.id}/_history/1", smart)
    new_total = Observation.read_from(f"Observation/{total.id}/_history/2", smart)
    assert (old_response.meta.versionId, old_response.item[0].answer[0].valueCoding.code) == ("1", LA[1])
    assert (old_total.valueQuantity.value, old_total.status) == (9, "final")
    assert (new_total.valueQuantity.value, new_total.status, new_total.meta.versionId) == (18, "amended", "2")
