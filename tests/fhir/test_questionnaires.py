"""Our instruments as Questionnaires, and the clinic's own (third-party) forms registered beside them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.questionnaire import Questionnaire

from app.auth.permissions import Role
from app.fhir import codes
from tests.conftest import ClinicKeys
from tests.fhir.conftest import (
    FHIR_JSON,
    LFORMS_ARGONAUT,
    LFORMS_CALCULATED,
    PUBLIC_FORMS,
    SDC_QUESTIONNAIRE,
    US_CORE_QUESTIONNAIRE,
    fixture,
    fixture_text,
    headers,
    issues,
    register,
    send,
)

PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
GAD7_LOINC = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
LL358_3 = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
ALL_INSTRUMENTS = [
    "bdi2",
    "fcs_for_others",
    "fcs_for_self",
    "fcs_from_others",
    "fscrs",
    "gad7",
    "phq9",
    "scs",
    "scs_sf",
]


def read(client: TestClient, clinic: ClinicKeys, questionnaire_id: str) -> dict[str, Any]:
    response = client.get(f"/fhir/Questionnaire/{questionnaire_id}", headers=headers(clinic, Role.CLINICIAN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    return body


def ordinal(option: dict[str, Any]) -> Any:
    return next((e["valueDecimal"] for e in option.get("extension", []) if e["url"] == codes.ORDINAL_VALUE), None)


def test_the_phq9_questionnaire_carries_loinc_codes_ordinal_values_canonical_url_and_version(
    client: TestClient, clinic: ClinicKeys
) -> None:
    q = read(client, clinic, "phq9")

    assert (q["id"], q["url"], q["version"], q["status"]) == (
        "phq9",
        "urn:compassion-outcomes:questionnaire:phq9",
        "1.0.0",
        "active",
    )
    assert q["code"] == [{"system": "http://loinc.org", "code": "44249-1"}]
    items = {item["linkId"]: item for item in q["item"]}
    assert [items[str(n)]["code"][0]["code"] for n in range(1, 10)] == PHQ9_LOINC
    assert items["10"]["code"][0]["code"] == "69722-7"
    for number in range(1, 10):
        options = items[str(number)]["answerOption"]
        assert [option["valueCoding"]["code"] for option in options] == LL358_3
        assert [ordinal(option) for option in options] == [0, 1, 2, 3]
    # Item 10 is not scored: its options carry no weight, so a naive sum of ordinals cannot count it.
    assert [ordinal(option) for option in items["10"]["answerOption"]] == [None, None, None, None]
    assert items["10"]["required"] is False
    assert items["total"]["code"] == [{"system": "http://loinc.org", "code": "44261-6"}]
    assert items["total"]["readOnly"] is True
    assert items["1"]["text"] == "Little interest or pleasure in doing things"
    Questionnaire.model_validate(q)


def test_form_fillers_get_radio_buttons_a_calculated_total_and_its_extraction_flag(
    client: TestClient, clinic: ClinicKeys
) -> None:
    q = read(client, clinic, "phq9")

    items = {item["linkId"]: item for item in q["item"]}
    for number in range(1, 11):
        assert items[str(number)]["extension"] == [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/questionnaire-item-control",
                            "code": "radio-button",
                        }
                    ]
                },
            }
        ]
    calculated, extract = items["total"]["extension"]
    assert calculated["url"] == "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
    assert calculated["valueExpression"]["language"] == "text/fhirpath"
    assert calculated["valueExpression"]["expression"].startswith("iif(%resource.item.where(linkId in ('1' | '2' |")
    assert extract == {
        "url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract",
        "valueBoolean": True,
    }


def test_the_gad7_questionnaire_uses_the_gad7_loinc_codes(client: TestClient, clinic: ClinicKeys) -> None:
    q = read(client, clinic, "gad7")

    assert q["code"] == [{"system": "http://loinc.org", "code": "69737-5"}]
    items = {item["linkId"]: item for item in q["item"]}
    assert [items[str(n)]["code"][0]["code"] for n in range(1, 8)] == GAD7_LOINC
    assert items["total"]["code"][0]["code"] == "70274-6"
    assert [option["valueCoding"]["code"] for option in items["7"]["answerOption"]] == LL358_3


def test_instruments_without_loinc_codes_get_product_codes_and_ids_without_underscores(
    client: TestClient, clinic: ClinicKeys
) -> None:
    q = read(client, clinic, "scs-sf")

    assert q["id"] == "scs-sf"
    assert read(client, clinic, "scs_sf")["id"] == "scs-sf"
    first = q["item"][0]
    assert first["code"] == [{"system": codes.ITEM_SYSTEM, "code": "scs_sf.1"}]
    # SCS-SF options 1–5 score 1–5; only the ends are labelled ("Almost never", "Almost always").
    assert [ordinal(option) for option in first["answerOption"]] == [1, 2, 3, 4, 5]
    assert [option["valueCoding"].get("display") for option in first["answerOption"]] == [
        "Almost never",
        None,
        None,
        None,
        "Almost always",
    ]


def test_every_instrument_is_listed_and_validates_as_r4(client: TestClient, clinic: ClinicKeys) -> None:
    response = client.get("/fhir/Questionnaire", headers=headers(clinic, Role.CLINICIAN))

    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert sorted(entry["resource"]["id"] for entry in bundle["entry"]) == sorted(
        codes.questionnaire_id(i) for i in ALL_INSTRUMENTS
    )
    for entry in bundle["entry"]:
        Questionnaire.model_validate(entry["resource"])


def test_licensed_text_appears_only_for_the_clinic_that_loaded_its_own_copy(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    before = read(client, clinic, "bdi2")
    # BDI-II wording is Pearson's: its items are not shipped with text (the total keeps our own label).
    assert [item["linkId"] for item in before["item"] if "text" in item] == ["total"]

    loaded = client.put(
        "/v1/instruments/bdi2/text",
        json={"licence_note": "Clinic licence 2026", "items": {"1": "Item one as licensed"}},
        headers=clinic.headers(Role.ADMIN),
    )
    assert loaded.status_code == 200, loaded.text

    mine = {item["linkId"]: item for item in read(client, clinic, "bdi2")["item"]}
    theirs = {item["linkId"]: item for item in read(client, other_clinic, "bdi2")["item"]}
    assert mine["1"]["text"] == "Item one as licensed"
    assert "text" not in theirs["1"]


def test_the_url_search_finds_one_instrument(client: TestClient, clinic: ClinicKeys) -> None:
    found = client.get(
        "/fhir/Questionnaire",
        params={"url": "urn:compassion-outcomes:questionnaire:gad7|1.0.0"},
        headers=headers(clinic),
    ).json()
    missing = client.get(
        "/fhir/Questionnaire",
        params={"url": "urn:compassion-outcomes:questionnaire:gad7|9.9.9"},
        headers=headers(clinic),
    ).json()

    assert [entry["resource"]["id"] for entry in found["entry"]] == ["gad7"]
    assert missing["total"] == 0


@pytest.mark.parametrize("name", PUBLIC_FORMS)
def test_each_known_public_form_registers_out_of_the_box(client: TestClient, clinic: ClinicKeys, name: str) -> None:
    questionnaire_id = register(client, clinic, name)

    stored = read(client, clinic, questionnaire_id)
    published = fixture(name)
    assert stored["id"] == questionnaire_id
    assert stored["meta"]["versionId"] == "1"
    assert stored["item"] == published["item"]  # kept as received


def test_forms_with_harmless_defects_register_with_warnings(client: TestClient, clinic: ClinicKeys) -> None:
    # lforms-calculated names FHIRPath variables with "_" (invalid R4 ids, 10×); argonaut has text without div.
    calculated = send(
        client, "POST", "/fhir/Questionnaire", clinic, fixture_text(LFORMS_CALCULATED), prefer="return=OperationOutcome"
    )
    argonaut = send(
        client,
        "PUT",
        "/fhir/Questionnaire/questionnaire-example-phq9",
        clinic,
        fixture_text(LFORMS_ARGONAUT),
        prefer="return=OperationOutcome",
    )

    assert calculated.status_code == argonaut.status_code == 201
    assert [(i["severity"], i["expression"][0]) for i in issues(calculated)] == [
        ("warning", f"Questionnaire.item[9].extension[{n}].valueExpression.name") for n in range(3, 13)
    ]
    assert [(i["severity"], i["expression"][0]) for i in issues(argonaut)] == [("warning", "Questionnaire.text.div")]


def test_a_put_whose_url_id_differs_from_the_resource_id_is_a_400(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "PUT", "/fhir/Questionnaire/another-id", clinic, fixture_text(US_CORE_QUESTIONNAIRE))

    assert response.status_code == 400
    [issue] = issues(response)
    assert issue["expression"] == ["Questionnaire.id"]
    assert "another-id" in issue["diagnostics"]
    assert "phq-9-example" in issue["diagnostics"]


def test_our_own_instruments_cannot_be_replaced(client: TestClient, clinic: ClinicKeys) -> None:
    form = {**fixture(US_CORE_QUESTIONNAIRE), "id": "phq9"}

    response = send(client, "PUT", "/fhir/Questionnaire/phq9", clinic, form)

    assert response.status_code == 409
    assert issues(response)[0]["code"] == "conflict"


def test_a_second_registration_of_the_same_url_and_version_is_a_conflict(
    client: TestClient, clinic: ClinicKeys
) -> None:
    first = send(client, "POST", "/fhir/Questionnaire", clinic, fixture_text(SDC_QUESTIONNAIRE))
    second = send(client, "POST", "/fhir/Questionnaire", clinic, fixture_text(SDC_QUESTIONNAIRE))

    assert (first.status_code, second.status_code) == (201, 409)


def test_a_put_replaces_the_form_and_bumps_its_version(client: TestClient, clinic: ClinicKeys) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    changed = {**fixture(US_CORE_QUESTIONNAIRE), "title": "PHQ-9 (our copy)"}

    response = send(client, "PUT", "/fhir/Questionnaire/phq-9-example", clinic, changed)

    assert response.status_code == 200
    assert response.json()["title"] == "PHQ-9 (our copy)"
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'


def test_a_form_that_maps_onto_no_instrument_is_a_422_naming_its_items(client: TestClient, clinic: ClinicKeys) -> None:
    form = copy.deepcopy(fixture(SDC_QUESTIONNAIRE))
    form["url"] = "https://clinic.example/Questionnaire/unmapped"

    response = send(client, "POST", "/fhir/Questionnaire", clinic, form)

    assert response.status_code == 422
    assert [i["expression"] for i in issues(response)][:2] == [
        ["Questionnaire.item[0].item[0]"],
        ["Questionnaire.item[0].item[1]"],
    ]


def test_registered_forms_belong_to_their_clinic(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)

    response = client.get("/fhir/Questionnaire/phq-9-example", headers=headers(other_clinic))
    listed = client.get("/fhir/Questionnaire", headers=headers(other_clinic)).json()

    assert response.status_code == 404
    assert issues(response)[0]["code"] == "not-found"
    assert "phq-9-example" not in [entry["resource"]["id"] for entry in listed["entry"]]


def test_registering_a_form_needs_the_questionnaires_permission(client: TestClient, clinic: ClinicKeys) -> None:
    response = send(client, "POST", "/fhir/Questionnaire", clinic, fixture_text(SDC_QUESTIONNAIRE), role=Role.CLINICIAN)

    assert response.status_code == 403
    assert issues(response)[0]["code"] == "forbidden"


def test_a_registered_form_reads_back_verbatim_in_content(client: TestClient, clinic: ClinicKeys) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)

    stored = read(client, clinic, "questionnaire-sdc-profile-example-PHQ9")
    published = fixture(SDC_QUESTIONNAIRE)

    assert {k: v for k, v in stored.items() if k != "meta"} == {k: v for k, v in published.items() if k != "meta"}
    assert json.dumps(stored["contained"]) == json.dumps(published["contained"])


def test_a_form_may_not_take_the_url_of_one_of_our_instruments(client: TestClient, clinic: ClinicKeys) -> None:
    form = {**fixture(US_CORE_QUESTIONNAIRE), "url": "urn:compassion-outcomes:questionnaire:phq9"}

    response = send(client, "POST", "/fhir/Questionnaire", clinic, form)

    assert response.status_code == 409
