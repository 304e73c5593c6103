"""GET /v1/research/codebook: a Frictionless data package describing every exported variable."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.research.variables import MAX_NAME, variable_name


def codebook(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    """The codebook of every instrument asked for (these tests store no data: by default only instruments with data
    are described)."""
    response = client.get("/v1/research/codebook", params={"all_instruments": "true", **params}, headers=headers)
    assert response.status_code == 200, response.text
    package: dict[str, Any] = response.json()
    return package


def fields(package: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in package["resources"][0]["schema"]["fields"]}


def test_the_wide_codebook_describes_each_score_column_with_range_direction_and_band_labels(
    client: TestClient, researcher: dict[str, str]
) -> None:
    package = codebook(client, researcher, layout="wide", instruments="phq9,scs_sf", format="sav")

    assert package["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    export = package["resources"][0]
    assert (export["path"], export["format"], export["mediatype"]) == (
        "research-export-wide-scores.sav",
        "sav",
        "application/x-spss-sav",
    )
    assert export["schema"]["primaryKey"] == ["patient_id", "week", "occasion"]
    described = fields(package)
    assert described["phq9_total"] == {
        "name": "phq9_total",
        "type": "number",
        "title": "PHQ-9 total score",
        "description": described["phq9_total"]["description"],
        "constraints": {"minimum": 0, "maximum": 27},
        "instrument": "phq9",
        "scoreKey": "total",
        "direction": "lower_is_better",
        "missingValues": described["phq9_total"]["missingValues"],
    }
    assert described["phq9_total_band"]["categories"] == [
        {"value": 1, "label": "minimal"},
        {"value": 2, "label": "mild"},
        {"value": 3, "label": "moderate"},
        {"value": 4, "label": "moderately severe"},
        {"value": 5, "label": "severe"},
    ]
    assert described["scs_sf_self_judgment"]["direction"] == "lower_is_better"
    assert described["scs_sf_total"]["constraints"] == {"minimum": 1, "maximum": 5}
    assert "pseudonym" in described["patient_id"]["description"].lower()
    assert "De-identified" in package["description"]


def test_the_long_codebook_lists_every_score_key_in_its_variables_resource(
    client: TestClient, researcher: dict[str, str]
) -> None:
    package = codebook(client, researcher, instruments="phq9,fscrs")

    described = fields(package)
    assert list(described) == [
        "patient_id",
        "session_number",
        "week",
        "days_since_first",
        "instrument",
        "instrument_version",
        "score_key",
        "value",
        "band",
        "band_label",
        "prorated",
        "flags",
    ]
    assert described["instrument"]["constraints"]["enum"] == ["fscrs", "phq9"]
    assert described["prorated"]["categories"] == [{"value": 0, "label": "no"}, {"value": 1, "label": "yes"}]
    variables = package["resources"][1]
    assert variables["name"] == "variables"
    keys = [(row["instrument"], row["score_key"]) for row in variables["data"]]
    assert keys == [
        ("fscrs", "inadequate_self"),
        ("fscrs", "hated_self"),
        ("fscrs", "reassured_self"),
        ("fscrs", "self_criticism"),
        ("phq9", "total"),
    ]
    phq9 = variables["data"][-1]
    assert phq9["bands"] == "1 = minimal: ≥ 0 and < 5; 2 = mild: ≥ 5 and < 10; 3 = moderate: ≥ 10 and < 15; " + (
        "4 = moderately severe: ≥ 15 and < 20; 5 = severe: ≥ 20"
    )
    assert (phq9["minimum"], phq9["maximum"], phq9["direction"]) == (0, 27, "lower_is_better")


def test_item_codebooks_give_public_wording_and_options_but_never_unlicensed_text(
    client: TestClient, researcher: dict[str, str]
) -> None:
    package = codebook(client, researcher, level="items", layout="wide", instruments="phq9,fcs_from_others,bdi2")

    items = {(row["instrument"], row["item"]): row for row in package["resources"][1]["data"]}
    assert items[("phq9", 1)]["text"] == "Little interest or pleasure in doing things"
    assert (
        items[("phq9", 1)]["options"] == "0=Not at all; 1=Several days; 2=More than half the days; 3=Nearly every day"
    )
    assert items[("phq9", 10)]["scored"] == 0
    assert items[("fcs_from_others", 1)]["text"] is None  # the licence forbids shipping FCS wording
    described = fields(package)
    assert described["phq9_i1"]["categories"][0] == {"value": 0, "label": "Not at all"}
    assert described["phq9_i1"]["constraints"] == {"minimum": 0, "maximum": 3}
    # BDI-II item 16 takes letter codes, so it is a string column whose allowed values are listed.
    assert described["bdi2_i16"]["type"] == "string"
    assert {"0", "1a", "1b", "2a", "2b", "3a", "3b"} <= set(described["bdi2_i16"]["constraints"]["enum"])


def test_every_variable_name_is_short_and_plain(client: TestClient, researcher: dict[str, str]) -> None:
    for level in ("scores", "items"):
        for name in fields(codebook(client, researcher, layout="wide", level=level)):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
            assert len(name) <= MAX_NAME, name


def test_a_name_longer_than_stata_allows_is_cut_with_a_stable_suffix() -> None:
    # "scs_uncompassionate_self_responding" has 35 characters: 27 are kept, then "_" and 4 hex digits of its hash.
    name = variable_name("scs", "uncompassionate_self_responding")

    assert len(name) == 32
    assert name.startswith("scs_uncompassionate_self_re_")
    assert name == variable_name("scs", "uncompassionate_self_responding")
    assert variable_name("phq9", "total") == "phq9_total"


def test_missing_data_codes_and_the_occasion_rule_are_in_the_codebook(
    client: TestClient, researcher: dict[str, str]
) -> None:
    package = codebook(client, researcher, layout="wide", instruments="phq9")

    schema = package["resources"][0]["schema"]
    assert schema["missingValues"] == [
        {"value": "", "label": "No value (no session, or not applicable)"},
        {"value": "-91", "label": "Item not answered"},
        {"value": "-92", "label": "Instrument not administered that week"},
        {"value": "-93", "label": "Occasion declined"},
        {"value": "-94", "label": "Occasion missed"},
    ]
    described = fields(package)
    assert described["phq9_total"]["missingValues"] == schema["missingValues"]
    assert "-93 (Stata .c) occasion declined" in described["phq9_total"]["description"]
    assert "occasion 2 the second" in package["description"]
    assert described["phq9_status"]["categories"][0] == {"value": 1, "label": "Completed"}


@pytest.mark.parametrize(("layout", "level"), [("long", "scores"), ("long", "items"), ("wide", "scores"),
                                               ("wide", "items")])  # fmt: skip
def test_every_description_and_title_is_whole_and_punctuated(
    client: TestClient, researcher: dict[str, str], layout: str, level: str
) -> None:
    described = fields(codebook(client, researcher, layout=layout, level=level))

    unpunctuated = [name for name, field in described.items() if not field["description"].endswith((".", "?", "!"))]
    assert unpunctuated == []
    assert not [name for name, field in described.items() if ".." in field["description"]]
