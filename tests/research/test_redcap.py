"""REDCap: the data dictionary and ``format=redcap`` records pass a check against REDCap's documented column rules
(``tests/research/redcap_rules.py``), keep every measurement, follow the licences, and stay de-identified."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ISSUE_PHQ9, ClinicKeys, new_clinic
from tests.research.conftest import (
    Project,
    all_items,
    expected_pseudonym,
    measure,
    new_patient,
    new_project,
    new_session,
)
from tests.research.redcap_rules import HEADERS, check_dictionary, check_records
from tests.security.test_invariant_csv_formulas import FORMULAS, dangerous_cells, stock_formulas

DICTIONARY = "/v1/research/redcap/data-dictionary"
SETUP = "/v1/research/redcap/setup"


def get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


def dictionary_rows(content: str) -> dict[str, dict[str, str]]:
    return {row["Variable / Field Name"]: row for row in csv.DictReader(io.StringIO(content, newline=""))}


def records(content: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content, newline="")))


def missing_codes(client: TestClient, headers: dict[str, str]) -> frozenset[str]:
    setup = get(client, SETUP, headers).json()
    return frozenset(line.split(",")[0] for line in setup["missing_data_codes_text"].splitlines())


def test_the_dictionary_of_every_instrument_passes_the_rules(client: TestClient, researcher: dict[str, str]) -> None:
    response = get(client, DICTIONARY, researcher)

    assert response.headers["content-type"].startswith("text/csv")
    problems, fields = check_dictionary(response.text)
    assert problems == []
    assert next(csv.reader(io.StringIO(response.text))) == HEADERS
    assert (fields[0].name, fields[0].form, fields[0].type) == ("record_id", "participant", "text")
    assert {field.form for field in fields} == {
        "participant",
        "bdi2",
        "fcs_for_others",
        "fcs_for_self",
        "fcs_from_others",
        "fscrs",
        "gad7",
        "phq9",
        "scs",
        "scs_sf",
    }


def test_items_carry_wording_and_labels_only_where_the_licence_ships_them(
    client: TestClient, researcher: dict[str, str]
) -> None:
    rows = dictionary_rows(get(client, DICTIONARY, researcher).text)

    # PHQ-9 ships its wording and labels (scales/phq9.yaml: text_shippable true).
    assert rows["phq9_i1"]["Field Type"] == "radio"
    assert rows["phq9_i1"]["Field Label"].startswith("Little interest or pleasure in doing things")
    assert rows["phq9_i1"]["Choices, Calculations, OR Slider Labels"] == (
        "0, Not at all | 1, Several days | 2, More than half the days | 3, Nearly every day"
    )
    # BDI-II ships neither (Pearson copyright): a neutral label, codes for labels, and a note saying why.
    assert rows["bdi2_i1"]["Field Label"] == "BDI-II item 1"
    assert rows["bdi2_i1"]["Choices, Calculations, OR Slider Labels"] == "0, 0 | 1, 1 | 2, 2 | 3, 3"
    assert "not shipped (licence)" in rows["bdi2_i1"]["Field Note"]
    # BDI-II items 16 and 18 keep their letter codes (scales/bdi2.yaml, option set "letters").
    assert rows["bdi2_i16"]["Choices, Calculations, OR Slider Labels"].endswith("| 3a, 3a | 3b, 3b")


def test_scores_are_validated_text_fields_with_the_definitions_ranges(
    client: TestClient, researcher: dict[str, str]
) -> None:
    rows = dictionary_rows(get(client, DICTIONARY, researcher, instruments="phq9,scs_sf").text)

    # PHQ-9 total: a sum of 9 items scored 0-3 that may be prorated (so not always whole): number, 0-27.
    total = rows["phq9_total"]
    assert (total["Field Type"], total["Text Validation Type OR Show Slider Number"]) == ("text", "number")
    assert (total["Text Validation Min"], total["Text Validation Max"]) == ("0", "27")
    assert rows["phq9_total_prorated"]["Field Type"] == "yesno"
    assert rows["phq9_total_band"]["Choices, Calculations, OR Slider Labels"] == (
        "1, minimal | 2, mild | 3, moderate | 4, moderately severe | 5, severe"
    )
    # SCS-SF total: a mean of items scored 1-5.
    assert rows["scs_sf_total"]["Text Validation Type OR Show Slider Number"] == "number"
    assert (rows["scs_sf_total"]["Text Validation Min"], rows["scs_sf_total"]["Text Validation Max"]) == ("1", "5")
    assert rows["phq9_days"]["Text Validation Type OR Show Slider Number"] == "integer"
    assert set(rows) >= {"record_id", "phq9_week", "phq9_session", "phq9_version"}


def test_records_pass_the_rules_against_the_dictionary_and_keep_every_measurement(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, project: Project, researcher: dict[str, str]
) -> None:
    a = new_patient(client, clinic, "MRN-REDCAP-A")
    first_session = new_session(client, clinic, a, 1, "2026-11-02T08:55:00Z")
    # A, day 0: PHQ-9 3+0+1+2+0+0+1+0+3 = 10, moderate (band 3), in session 1.
    measure(client, clinic, a, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z", first_session)
    # A, day 2, same week: PHQ-9 9 × 2 = 18, moderately severe (band 4). Both are kept, as instances 1 and 2.
    measure(client, clinic, a, "phq9", all_items(9, 2), "2026-11-04T09:00:00Z")
    # A, day 2: GAD-7 7 × 1 = 7, mild.
    measure(client, clinic, a, "gad7", all_items(7, 1), "2026-11-04T09:30:00Z")
    b = new_patient(client, clinic)
    # B, day 0: PHQ-9 items 1-8 answered 1, item 9 unanswered: prorated 8 × 9 / 8 = 9.0.
    measure(client, clinic, b, "phq9", {str(n): 1 for n in range(1, 9)}, "2026-11-05T10:00:00Z")

    dictionary = get(client, DICTIONARY, researcher, instruments="phq9,gad7").text
    export = get(client, "/v1/research/export", researcher, format="redcap", instruments="phq9,gad7")
    problems, fields = check_dictionary(dictionary)
    assert problems == []
    assert check_records(export.text, fields, missing_codes(client, researcher)) == []

    rows = records(export.text)
    assert next(csv.reader(io.StringIO(export.text)))[:3] == [
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
    ]
    pseudonym_a, pseudonym_b = expected_pseudonym(app, project, a), expected_pseudonym(app, project, b)
    of_a = [row for row in rows if row["record_id"] == pseudonym_a]
    assert [(row["redcap_repeat_instrument"], row["redcap_repeat_instance"]) for row in of_a] == [
        ("", ""),
        ("phq9", "1"),
        ("phq9", "2"),
        ("gad7", "1"),
    ]
    assert [(row["phq9_days"], row["phq9_week"], row["phq9_total"], row["phq9_total_band"]) for row in of_a[1:3]] == [
        ("0", "0", "10", "3"),
        ("2", "0", "18", "4"),
    ]
    assert of_a[1]["phq9_session"] == "1"
    assert of_a[2]["phq9_session"] == ""
    assert (of_a[3]["gad7_total"], of_a[3]["gad7_days"], of_a[3]["phq9_total"]) == ("7", "2", "")
    assert of_a[1]["phq9_complete"] == "2"
    assert of_a[0]["participant_complete"] == "2"

    (of_b,) = [row for row in rows if row["record_id"] == pseudonym_b and row["redcap_repeat_instrument"]]
    assert (of_b["phq9_total"], of_b["phq9_total_prorated"], of_b["phq9_i9"]) == ("9", "1", "UNANSWERED")
    assert "MRN-REDCAP-A" not in export.text
    assert a not in export.text


def test_every_dictionary_passes_with_each_instrument_alone(client: TestClient, researcher: dict[str, str]) -> None:
    setup = get(client, SETUP, researcher).json()
    for instrument in setup["repeating_instruments"]:
        problems, fields = check_dictionary(get(client, DICTIONARY, researcher, instruments=instrument).text)
        assert problems == [], instrument
        assert [field.form for field in fields][:2] == ["participant", instrument]


def test_the_setup_names_the_repeating_forms_and_missing_codes(client: TestClient, researcher: dict[str, str]) -> None:
    setup = get(client, SETUP, researcher, instruments="gad7,phq9").json()

    assert setup["project_type"] == "classic"
    assert (setup["record_id_field"], setup["base_form"]) == ("record_id", "participant")
    assert setup["repeating_instruments"] == ["gad7", "phq9"]
    assert setup["missing_data_codes_text"].splitlines()[0] == "UNANSWERED, Item not answered"


def test_the_checker_catches_broken_dictionaries_and_records() -> None:
    good = ",".join(f'"{header}"' for header in HEADERS) + "\n" + "record_id,participant,,text,Id" + "," * 13 + "\n"
    assert check_dictionary(good)[0] == []
    assert check_dictionary(good.replace("record_id", "Record ID"))[0] != []
    assert check_dictionary(good.replace(",text,", ",textbox,"))[0] != []
    radio = good + 'q1,form_a,,radio,Q1,"0, No | 0, Yes"' + "," * 12 + "\n"
    assert "repeated" in " ".join(check_dictionary(radio)[0])
    ranged = good + "q1,form_a,,text,Q1,,,integer,0,3" + "," * 8 + "\n"
    problems, fields = check_dictionary(ranged)
    assert problems == []
    header = "record_id,redcap_repeat_instrument,redcap_repeat_instance,q1\n"
    assert check_records(header + "r1,form_a,1,3\n", fields, frozenset()) == []
    assert check_records(header + "r1,form_a,1,4\n", fields, frozenset()) != []
    assert check_records(header + "r1,form_a,1,ASKED\n", fields, frozenset({"ASKED"})) == []
    assert check_records("q1,record_id\n3,r1\n", fields, frozenset()) != []
    assert check_records(header.replace("q1", "q2") + "r1,form_a,1,3\n", fields, frozenset()) != []


def test_redcap_is_refused_where_it_does_not_apply(client: TestClient, clinic: ClinicKeys) -> None:
    admin = clinic.headers(Role.ADMIN)
    identified = client.get("/v1/research/export/identified", params={"format": "redcap"}, headers=admin)
    codebook = client.get("/v1/research/codebook", params={"format": "redcap"}, headers=admin)

    assert identified.status_code == codebook.status_code == 422
    assert identified.headers["content-type"].startswith("application/problem+json")


def test_the_routes_are_for_researchers_and_scoped_to_the_clinic(client: TestClient, app: Any) -> None:
    clinic = new_clinic(app)
    other = new_clinic(app)
    patient = new_patient(client, other)
    measure(client, other, patient, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z")

    assert client.get(DICTIONARY, headers=clinic.headers(Role.CLINICIAN)).status_code == 403
    assert client.get(DICTIONARY).status_code == 401
    export = get(client, "/v1/research/export", new_project(client, clinic).headers, format="redcap")
    assert records(export.text) == []


def test_records_of_hostile_text_start_no_formula_and_still_pass_the_rules(client: TestClient, app: Any) -> None:
    """Patients whose external ids, stored score keys, bands and a value start spreadsheet formulas (as an older
    definition could have left them): only the dictionary's fields are written, and nothing starts a formula."""
    clinic = stock_formulas(app, client)
    researcher = new_project(client, clinic).headers
    dictionary = get(client, DICTIONARY, researcher).text
    export = get(client, "/v1/research/export", researcher, format="redcap")

    problems, fields = check_dictionary(dictionary)
    assert check_records(export.text, fields, missing_codes(client, researcher)) == []
    assert dangerous_cells(export.text)[1] == []
    assert dangerous_cells(dictionary)[1] == []
    rows = [row for row in records(export.text) if row["redcap_repeat_instrument"] == "scs_sf"]
    # The stored SCS-SF "total" of -3 is outside the definition's 1-5 (REDCap's import would refuse it): left out.
    assert [row["scs_sf_total"] for row in rows] == [""] * len(FORMULAS)


def test_letter_coded_answers_are_choices_of_the_dictionary(
    client: TestClient, clinic: ClinicKeys, researcher: dict[str, str]
) -> None:
    patient = new_patient(client, clinic)
    # BDI-II, every item 1 but item 16 "2a" (sleep, scored 2): total 20 × 1 + 2 = 22.
    measure(client, clinic, patient, "bdi2", {**all_items(21, 1), "16": "2a"}, "2026-11-02T09:00:00Z")

    problems, fields = check_dictionary(get(client, DICTIONARY, researcher, instruments="bdi2").text)
    export = get(client, "/v1/research/export", researcher, format="redcap", instruments="bdi2")
    assert problems == []
    assert check_records(export.text, fields, missing_codes(client, researcher)) == []
    (row,) = [row for row in records(export.text) if row["redcap_repeat_instrument"] == "bdi2"]
    assert (row["bdi2_i16"], row["bdi2_i1"], row["bdi2_total"]) == ("2a", "1", "22")
