"""QuestionnaireResponses in: every published response posts (or gets the OperationOutcome its defect calls for),
is scored on the server, stored as a measurement with source fhir, and kept verbatim."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.state import state_of
from app.fhir.models import FhirResource
from tests.conftest import ClinicKeys
from tests.fhir.conftest import (
    LFORMS_ARGONAUT,
    LFORMS_CALCULATED,
    MII_QUESTIONNAIRE,
    SDC_QUESTIONNAIRE,
    STANFORD_GAD7,
    US_CORE_QUESTIONNAIRE,
    about,
    fixture,
    headers,
    issues,
    measurements_of,
    register,
    send,
)

QR = "/fhir/QuestionnaireResponse"
PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
GAD7_LINK_IDS = [
    "2bab9480-5251-4997-8a2e-937a1701cfe9",
    "d8c78a49-c02c-4986-800c-b076a5bb3553",
    "9756848f-1360-4e72-8884-a3bdc08799ed",
    "4158b3d6-c218-42f4-8e83-42932e590100",
    "1c05b1f1-763d-44cc-bb72-0a833b581aba",
    "2f0858ee-23d0-4cd0-86f7-a63609b62f6a",
    "8c6a877a-3867-4b36-c097-2b342649cadb",
]


def measurement(client: TestClient, clinic: ClinicKeys, patient_id: str) -> dict[str, Any]:
    [only] = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    return only  # type: ignore[no-any-return]


def our_phq9(answers: dict[str, int], **extra: Any) -> dict[str, Any]:
    """A response to our own PHQ-9 Questionnaire, answered with LOINC codes."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:compassion-outcomes:questionnaire:phq9|1.0.0",
        "status": "completed",
        "authored": "2026-11-20T09:30:00+01:00",
        "item": [
            {"linkId": number, "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LA[value]}}]}
            for number, value in answers.items()
        ],
        **extra,
    }


def stanford_gad7(values: list[int], patient_id: str) -> dict[str, Any]:
    """A response to the Stanford GAD-7 (whose local codes are weighted 0–3 by ordinalValue)."""
    codes = ["Not-at-all", "Several-days", "More than half the days", "Nearly every day"]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://biodesign.stanford.edu/fhir/questionnaire/GAD-7",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-11-20T09:30:00Z",
        "item": [
            {
                "linkId": "a2ae9518-55b5-41cc-928d-00132d1a3c1e",
                "item": [
                    {
                        "linkId": link_id,
                        "answer": [
                            {
                                "valueCoding": {
                                    "system": "http://biodesign.stanford.edu/fhir/uv/sdc/CodeSystem/CSGAD7",
                                    "code": codes[value],
                                }
                            }
                        ],
                    }
                    for link_id, value in zip(GAD7_LINK_IDS, values, strict=False)
                ],
            }
        ],
    }


# (response file, the form it answers, computed total by hand, declared total, band, flags)
PUBLISHED = [
    # 2+2+2+2+1+1+2+0+0 = 12; its declared 12 agrees.
    ("qr-phq9-uscore.json", US_CORE_QUESTIONNAIRE, 12, 12, "moderate", []),
    # 0+0+0+1+2+1+3+2+1 = 10; it declares 13.
    ("qr-phq9-sdc.json", SDC_QUESTIONNAIRE, 10, 13, "moderate", ["item9_positive"]),
    # The adaptive form derives from the SDC form; the same answers, 10, declared 13.
    ("qr-phq9-sdc-adaptive.json", SDC_QUESTIONNAIRE, 10, 13, "moderate", ["item9_positive"]),
    # "Nearly every day" (3) on all 9 items: 27, no declared total.
    ("qr-phq9-spezi-researchkit.json", SDC_QUESTIONNAIRE, 27, None, "severe", ["item9_positive"]),
    ("qr-phq9-spezi-native.json", SDC_QUESTIONNAIRE, 27, None, "severe", ["item9_positive"]),
]


@pytest.mark.parametrize(("name", "form", "total", "declared", "band", "flags"), PUBLISHED)
def test_each_published_response_is_scored_on_the_server(
    client: TestClient,
    clinic: ClinicKeys,
    patient_id: str,
    name: str,
    form: str,
    total: int,
    declared: int | None,
    band: str,
    flags: list[str],
) -> None:
    register(client, clinic, form)

    response = send(client, "POST", QR, clinic, about(fixture(name), patient_id))

    assert response.status_code == 201, response.text
    stored = measurement(client, clinic, patient_id)
    assert stored["source"] == "fhir"
    assert stored["instrument"] == "phq9"
    assert stored["scores"]["total"]["value"] == total
    assert stored["scores"]["total"]["band"] == band
    assert stored["flags"] == flags
    assert stored["declared_total"] == declared
    mismatch = [w for w in stored["warnings"] if w["code"] == "declared_total_mismatch"]
    assert len(mismatch) == (1 if declared is not None and declared != total else 0)


US_CORE_ITEMS = [f"/{code}" for code in PHQ9_LOINC] + ["/69722-7"]
RELINKED: dict[str, dict[str, str | None]] = {
    # The US Core answers under each form's own linkIds for the same LOINC items (None: the form has no such item).
    LFORMS_CALCULATED: {link_id: link_id for link_id in [*US_CORE_ITEMS, "/44261-6"]},
    LFORMS_ARGONAUT: {
        **{link_id: f"g1.q{n}" for n, link_id in enumerate(US_CORE_ITEMS[:9], start=1)},
        "/69722-7": "g2.q1",
        "/44261-6": None,  # its total is a hidden display item: nothing to answer
    },
    MII_QUESTIONNAIRE: {
        **{link_id: f"PHQ-9.{n}" for n, link_id in enumerate(US_CORE_ITEMS, start=1)},
        "/44261-6": "PHQ-9.Score",
    },
}


@pytest.mark.parametrize("form", list(RELINKED))
def test_the_us_core_answers_score_against_the_other_loinc_coded_forms(
    client: TestClient, clinic: ClinicKeys, patient_id: str, form: str
) -> None:
    form_id = register(client, clinic, form)
    qr = about(fixture("qr-phq9-uscore.json"), patient_id)
    qr["questionnaire"] = f"Questionnaire/{form_id}"
    qr["item"] = [
        {**item, "linkId": RELINKED[form][item["linkId"]]} for item in qr["item"] if RELINKED[form][item["linkId"]]
    ]

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 201, response.text
    # 2+2+2+2+1+1+2+0+0 = 12
    assert measurement(client, clinic, patient_id)["scores"]["total"]["value"] == 12


def test_a_declared_total_that_differs_is_reported_as_a_warning_never_used(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)

    response = send(
        client, "POST", QR, clinic, about(fixture("qr-phq9-sdc.json"), patient_id), prefer="return=OperationOutcome"
    )

    [warning] = issues(response)
    assert warning["severity"] == "warning"
    assert "13" in warning["diagnostics"]
    assert "10" in warning["diagnostics"]


def test_nanosecond_timestamps_are_accepted_to_the_microsecond(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)

    send(client, "POST", QR, clinic, about(fixture("qr-phq9-spezi-researchkit.json"), patient_id))

    # authored 2026-02-19T22:09:14.800706982+01:00 → 21:09:14.800706 UTC (nanoseconds dropped).
    assert measurement(client, clinic, patient_id)["measured_at"] == "2026-02-19T21:09:14.800706Z"


def test_the_response_is_kept_verbatim_and_reads_back_under_its_server_id(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    # Odd but valid formatting (indentation, key order, escapes) that a re-serialisation would lose.
    body = json.dumps(about(fixture("qr-phq9-uscore.json"), patient_id), indent=3, sort_keys=True, ensure_ascii=True)

    created = send(client, "POST", QR, clinic, body)
    read = client.get(created.headers["location"], headers=headers(clinic))

    assert created.status_code == 201
    server_id = created.json()["id"]
    assert server_id != "phq-9-example"  # a POST ignores the client's id (the same id recurs across files)
    with state_of(app).read_sessions() as db:
        row = db.query(FhirResource).filter_by(logical_id=server_id).one()
    assert row.raw == body
    assert read.json()["id"] == server_id
    assert read.json()["meta"]["versionId"] == "1"
    assert read.json()["item"] == fixture("qr-phq9-uscore.json")["item"]
    assert read.json()["subject"] == {"reference": f"Patient/{patient_id}"}


def test_the_mii_response_names_linkids_its_questionnaire_lacks_one_issue_each(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, MII_QUESTIONNAIRE)

    response = send(client, "POST", QR, clinic, about(fixture("qr-phq9-mii.json"), patient_id))

    assert response.status_code == 422
    found = issues(response)
    # PHQ.1 … PHQ.10 and PHQ.Score, where the form has PHQ-9.1 … PHQ-9.10 and PHQ-9.Score.
    assert [issue["expression"] for issue in found] == [[f"QuestionnaireResponse.item[{i}].linkId"] for i in range(11)]
    assert "'PHQ.1'" in found[0]["diagnostics"]
    assert measurements_of(app, patient_id) == []


def test_a_published_response_about_someone_else_is_refused(client: TestClient, clinic: ClinicKeys) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    register(client, clinic, SDC_QUESTIONNAIRE)

    us_core = send(client, "POST", QR, clinic, fixture("qr-phq9-uscore.json"))  # subject Patient/example
    spezi = send(client, "POST", QR, clinic, fixture("qr-phq9-spezi-native.json"))  # no subject

    assert us_core.status_code == 404
    assert [(i["code"], i["expression"]) for i in issues(us_core)] == [("not-found", ["QuestionnaireResponse.subject"])]
    assert spezi.status_code == 422
    assert [(i["code"], i["expression"]) for i in issues(spezi)] == [("required", ["QuestionnaireResponse.subject"])]


def test_another_clinics_patient_is_not_found(client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys) -> None:
    theirs = client.post("/v1/patients", json={}, headers=other_clinic.headers()).json()["id"]

    response = send(client, "POST", QR, clinic, our_phq9({"1": 1}, subject={"reference": f"Patient/{theirs}"}))

    assert response.status_code == 404


def test_malformed_json_is_a_400_and_stores_nothing(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = send(client, "POST", QR, clinic, '{"resourceType": "QuestionnaireResponse", "status": ')

    assert response.status_code == 400
    [issue] = issues(response)
    assert issue["code"] == "structure"
    assert "line 1 column" in issue["diagnostics"]
    assert measurements_of(app, patient_id) == []


def test_an_unknown_questionnaire_is_a_422(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    qr = about(fixture("qr-phq9-uscore.json"), patient_id)  # its form is not registered in this clinic

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    [issue] = issues(response)
    assert (issue["code"], issue["expression"]) == ("not-found", ["QuestionnaireResponse.questionnaire"])
    assert "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example" in issue["diagnostics"]


def test_an_unknown_answer_code_names_the_linkid_and_the_code(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = about(fixture("qr-phq9-uscore.json"), patient_id)
    qr["item"][4]["answer"][0]["valueCoding"]["code"] = "LA9999-9"

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    [issue] = issues(response)
    assert issue["code"] == "code-invalid"
    assert issue["expression"] == ["QuestionnaireResponse.item[4].answer[0].valueCoding"]
    assert "LA9999-9" in issue["diagnostics"]
    assert "/44251-7" in issue["diagnostics"]


def test_answers_match_by_code_alone_when_the_system_is_missing(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    answers = {"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3}
    qr = our_phq9(answers, subject={"reference": f"Patient/{patient_id}"})
    for item in qr["item"]:
        del item["answer"][0]["valueCoding"]["system"]

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 201, response.text
    # 3+0+1+2+0+0+1+0+3 = 10
    assert measurement(client, clinic, patient_id)["scores"]["total"]["value"] == 10


def test_a_code_from_another_system_is_not_an_answer(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    qr = our_phq9({"1": 1}, subject={"reference": f"Patient/{patient_id}"})
    qr["item"][0]["answer"][0]["valueCoding"]["system"] = "http://snomed.info/sct"

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert issues(response)[0]["code"] == "code-invalid"


def test_missing_items_beyond_the_phq9_rule_are_refused_one_issue_each(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = about(fixture("qr-phq9-uscore.json"), patient_id)
    qr["item"] = [item for item in qr["item"] if item["linkId"] not in ("/44250-9", "/44255-8", "/44259-0")]

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert [(i["code"], i["expression"]) for i in issues(response)] == [
        ("required", ["QuestionnaireResponse.item.where(linkId='/44250-9')"]),
        ("required", ["QuestionnaireResponse.item.where(linkId='/44255-8')"]),
        ("required", ["QuestionnaireResponse.item.where(linkId='/44259-0')"]),
    ]
    assert measurements_of(app, patient_id) == []


def test_two_missing_phq9_items_are_prorated(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    register(client, clinic, US_CORE_QUESTIONNAIRE)
    qr = about(fixture("qr-phq9-uscore.json"), patient_id)
    qr["item"] = [item for item in qr["item"] if item["linkId"] not in ("/44250-9", "/44255-8")]

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 201, response.text
    stored = measurement(client, clinic, patient_id)
    # answered 2+2+1+1+2+0+0 = 8 over 7 items → 8 × 9 / 7
    assert stored["scores"]["total"]["value"] == 72 / 7
    assert stored["scores"]["total"]["prorated"] is True


def test_a_gad7_response_to_the_stanford_form_is_scored(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, STANFORD_GAD7)

    response = send(client, "POST", QR, clinic, stanford_gad7([1, 2, 3, 0, 1, 2, 3], patient_id))

    assert response.status_code == 201, response.text
    stored = measurement(client, clinic, patient_id)
    # 1+2+3+0+1+2+3 = 12 → moderate (10–14)
    assert (stored["instrument"], stored["scores"]["total"]["value"], stored["scores"]["total"]["band"]) == (
        "gad7",
        12,
        "moderate",
    )


def test_a_gad7_with_5_of_7_items_is_refused_no_missing_item_is_allowed(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, STANFORD_GAD7)

    response = send(client, "POST", QR, clinic, stanford_gad7([1, 2, 3, 0, 1], patient_id))

    assert response.status_code == 422
    assert [i["expression"] for i in issues(response)] == [
        [f"QuestionnaireResponse.item.where(linkId='{GAD7_LINK_IDS[5]}')"],
        [f"QuestionnaireResponse.item.where(linkId='{GAD7_LINK_IDS[6]}')"],
    ]


def test_only_completed_or_amended_responses_are_scored(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = our_phq9({"1": 1}, status="in-progress", subject={"reference": f"Patient/{patient_id}"})

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.status"]


def test_answers_of_the_wrong_json_type_are_a_400(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    qr = our_phq9({"1": 1}, subject={"reference": f"Patient/{patient_id}"})
    qr["item"][0]["answer"][0]["valueCoding"]["code"] = 3  # the R4B models would coerce this

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 400


def test_an_element_r4_does_not_know_is_a_400_with_its_path(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = our_phq9({"1": 1}, subject={"reference": f"Patient/{patient_id}"})
    qr["item"][0]["score"] = 1

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 400
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.item[0].score"]


def test_authored_needs_a_time_with_a_time_zone(client: TestClient, clinic: ClinicKeys, patient_id: str) -> None:
    qr = our_phq9({"1": 1}, authored="2026-11-20", subject={"reference": f"Patient/{patient_id}"})

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.authored"]


def test_an_unknown_version_of_our_questionnaire_is_unknown(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = our_phq9(
        {"1": 1},
        questionnaire="urn:compassion-outcomes:questionnaire:phq9|0.9.0",
        subject={"reference": f"Patient/{patient_id}"},
    )

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert issues(response)[0]["code"] == "not-found"


def test_a_relative_reference_resolves_our_questionnaire(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    answers = {"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3}
    qr = our_phq9(answers, questionnaire="Questionnaire/phq9", subject={"reference": f"Patient/{patient_id}"})
    qr["item"].append({"linkId": "total", "answer": [{"valueDecimal": 10}]})

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 201, response.text
    stored = measurement(client, clinic, patient_id)
    assert (stored["scores"]["total"]["value"], stored["declared_total"], stored["warnings"]) == (10, 10, [])


def test_posting_responses_needs_the_measurements_write_permission(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = send(
        client,
        "POST",
        QR,
        clinic,
        our_phq9({"1": 1}, subject={"reference": f"Patient/{patient_id}"}),
        role=Role.RESEARCHER,
    )

    assert response.status_code == 403


def test_another_clinics_response_is_not_found(
    client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, patient_id: str
) -> None:
    answers = {str(n): 1 for n in range(1, 10)}
    created = send(client, "POST", QR, clinic, our_phq9(answers, subject={"reference": f"Patient/{patient_id}"}))

    response = client.get(created.headers["location"], headers=headers(other_clinic))

    assert created.status_code == 201
    assert response.status_code == 404
    assert issues(response)[0]["code"] == "not-found"


def test_a_response_can_name_its_form_by_a_canonical_with_version(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    register(client, clinic, SDC_QUESTIONNAIRE)
    qr = copy.deepcopy(about(fixture("qr-phq9-spezi-native.json"), patient_id))
    qr["questionnaire"] += "|0.0.1"

    assert send(client, "POST", QR, clinic, qr).status_code == 201


def with_answers(patient_id: str, **changes: Any) -> dict[str, Any]:
    """Our PHQ-9 answered 1 on every item (total 9), then items replaced as told."""
    qr = our_phq9({str(n): 1 for n in range(1, 10)}, subject={"reference": f"Patient/{patient_id}"})
    for link_id, item in changes.items():
        qr["item"] = [i for i in qr["item"] if i["linkId"] != link_id.removeprefix("item")] + item
    return qr


def test_each_problem_with_the_answers_gets_its_own_issue(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    loinc = {"system": "http://loinc.org", "code": "LA6569-3"}
    qr = with_answers(
        patient_id,
        item1=[{"linkId": "1", "answer": [{"valueCoding": loinc}, {"valueCoding": loinc}]}],  # two answers
        item2=[{"linkId": "2", "answer": [{"valueString": "Several days"}]}],  # not a coding
        item3=[
            {"linkId": "3", "answer": [{"valueCoding": loinc}]},
            {"linkId": "3", "answer": [{"valueCoding": loinc}]},
        ],
        item4=[{"linkId": "4", "answer": [{}]}],  # no value
    )

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 422
    assert sorted(issue["code"] for issue in issues(response)) == ["duplicate", "invalid", "invalid", "invalid"]


def test_a_declared_total_may_be_a_quantity_or_a_numeric_string(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    for total in ({"valueQuantity": {"value": 9, "unit": "{score}"}}, {"valueString": "9"}):
        qr = with_answers(patient_id, itemtotal=[{"linkId": "total", "answer": [total]}])
        assert send(client, "POST", QR, clinic, qr).status_code == 201

    stored = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers()).json()["items"]
    assert [(m["declared_total"], m["warnings"]) for m in stored] == [(9, []), (9, [])]


def test_a_declared_total_of_the_wrong_json_type_is_a_400(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    qr = with_answers(patient_id, itemtotal=[{"linkId": "total", "answer": [{"valueDecimal": "9"}]}])

    response = send(client, "POST", QR, clinic, qr)

    assert response.status_code == 400
    assert issues(response)[0]["expression"] == ["QuestionnaireResponse.item[9].answer[0].valueDecimal"]


def test_authored_outside_1900_to_now_is_an_operation_outcome_naming_authored_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    subject = {"reference": f"Patient/{patient_id}"}
    for authored in ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z"]:
        qr = our_phq9({"1": 1}, authored=authored, subject=subject)
        entry = {"resource": qr, "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        answers = [
            send(client, "POST", QR, clinic, qr),
            send(client, "POST", "/fhir", clinic, {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}),
        ]
        for response in answers:
            assert response.status_code == 422, response.text
            assert response.json()["resourceType"] == "OperationOutcome"
            [issue] = issues(response)
            assert issue["expression"][0] in {"QuestionnaireResponse.authored", "Bundle.entry[0].resource.authored"}
            assert "from 1900-01-01T00:00:00Z to now plus 5 minutes" in issue["diagnostics"]

    assert measurements_of(app, patient_id) == []
