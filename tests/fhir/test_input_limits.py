"""FHIR input within FHIR's rules: ids of at most 64 id characters, bounded text, and no key named twice."""

from __future__ import annotations

import json
import uuid

from fastapi.testclient import TestClient

from app.fhir.request_body import MAX_TEXT_CHARACTERS
from tests.conftest import ClinicKeys
from tests.fhir.conftest import US_CORE_QUESTIONNAIRE, fixture, send

MRN = "urn:oid:2.16.840.1.113883.19.5"
TOO_LONG_ID = "a" * 65


def test_a_logical_id_longer_than_64_characters_is_refused_everywhere(client: TestClient, clinic: ClinicKeys) -> None:
    patient = {"resourceType": "Patient", "id": TOO_LONG_ID, "identifier": [{"system": MRN, "value": "M-1"}]}
    read = client.get(f"/fhir/QuestionnaireResponse/{TOO_LONG_ID}", headers=clinic.headers())
    put = send(client, "PUT", f"/fhir/Patient/{TOO_LONG_ID}", clinic, patient)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "PUT", "url": f"Patient/{TOO_LONG_ID}"}}],
    }
    in_bundle = send(client, "POST", "/fhir", clinic, bundle)

    for refused in (read, put):
        assert refused.status_code == 400
        assert refused.json()["resourceType"] == "OperationOutcome"
    assert "response_id" in read.json()["issue"][0]["diagnostics"]
    assert "patient_id" in put.json()["issue"][0]["diagnostics"]
    assert in_bundle.status_code == 400
    assert in_bundle.json()["issue"][0]["expression"] == ["Bundle.entry[0].request.url"]


def test_text_longer_than_the_limit_is_refused_naming_the_field(client: TestClient, clinic: ClinicKeys) -> None:
    form = fixture(US_CORE_QUESTIONNAIRE)
    form.pop("id", None)
    form["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * 10_000_000}
    form["text"]["div"] += "</div>"

    refused = send(client, "POST", "/fhir/Questionnaire", clinic, form)

    assert refused.status_code == 400
    [issue] = refused.json()["issue"]
    assert (issue["code"], issue["expression"]) == ("too-long", ["Questionnaire.text.div"])
    assert str(MAX_TEXT_CHARACTERS) in issue["diagnostics"]
    assert len(refused.content) < 2_000


def test_a_resource_naming_a_key_twice_is_refused_and_nothing_is_stored(client: TestClient, clinic: ClinicKeys) -> None:
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}]})
    duplicated = body.replace(f'"value": "{mrn}"', f'"value": "{mrn}", "value": "{mrn}-replaced"')

    refused = send(client, "POST", "/fhir/Patient", clinic, duplicated)
    search = client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=clinic.headers())

    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert "'value' appears twice" in refused.json()["issue"][0]["diagnostics"]
    assert search.status_code == 404


def test_a_number_too_large_for_a_decimal_is_refused_even_where_validation_is_lenient(
    client: TestClient, clinic: ClinicKeys
) -> None:
    """``1e400`` reads as infinity, which no FHIR number holds and JSON cannot write back: a Questionnaire's
    extensions are validated leniently, so the parser refuses it before anything could store it as ``null``."""
    form = fixture(US_CORE_QUESTIONNAIRE)
    form.pop("id", None)
    form["url"] = f"http://example.org/Questionnaire/{uuid.uuid4().hex[:8]}"
    form["extension"] = [{"url": "http://example.org/weight", "valueDecimal": 1.5}]
    body = json.dumps(form).replace('"valueDecimal": 1.5', '"valueDecimal": 1e400')

    refused = send(client, "POST", "/fhir/Questionnaire", clinic, body)
    listed = client.get("/fhir/Questionnaire", params={"url": form["url"]}, headers=clinic.headers())

    assert refused.status_code == 400, refused.text
    assert "1e400 is too large" in refused.json()["issue"][0]["diagnostics"]
    assert listed.json().get("total", len(listed.json().get("entry", []))) == 0
