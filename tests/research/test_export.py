"""Research exports: the shapes of the issue, in every format, de-identified, scoped to the clinic, and recorded."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pyreadstat
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.research.conftest import (
    Project,
    all_items,
    expected_pseudonym,
    measure,
    new_patient,
    new_project,
    new_session,
)

PRIVATE_WORDING = "Lite interesse for eller glede av å gjøre ting (klinikkens lisens)"
AMENDMENT_REASON = "typed in by nurse Jones from the paper form"
MEASUREMENT_DATES = ("2026-11-02", "2026-11-05", "2026-11-10")


@dataclass(frozen=True)
class Course:
    """Two patients' measurements, built through the public API."""

    a: str
    b: str
    a_external: str


@pytest.fixture
def course(client: TestClient, clinic: ClinicKeys) -> Course:
    external = f"MRN-{uuid.uuid4().hex[:8]}"
    a = new_patient(client, clinic, external)
    first_session = new_session(client, clinic, a, 1, "2026-11-02T08:55:00Z")
    # A, day 0: PHQ-9 3+0+1+2+0+0+1+0+3 = 10 (moderate, item 9 positive), in session 1.
    measure(client, clinic, a, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z", first_session)
    # A, day 0: GAD-7 7 × 2 = 14 (moderate: 10 ≤ 14 < 15), no session.
    measure(client, clinic, a, "gad7", all_items(7, 2), "2026-11-02T09:30:00Z")
    # A, day 8 (week 1): PHQ-9 9 × 1 = 9, then amended to 9 × 2 = 18 (moderately severe: 15 ≤ 18 < 20).
    second = measure(client, clinic, a, "phq9", all_items(9, 1), "2026-11-10T08:00:00Z")
    amended = client.post(
        f"/v1/patients/{a}/measurements/{second['id']}/amend",
        json={"items": all_items(9, 2), "reason": AMENDMENT_REASON},
        headers=clinic.headers(),
    )
    assert amended.status_code == 201, amended.text
    b = new_patient(client, clinic)
    # B, day 0: items 1-8 answered 1, item 9 missing: prorated 8 × 9 / 8 = 9.0 (mild), flagged item9_missing.
    measure(client, clinic, b, "phq9", {str(n): 1 for n in range(1, 9)}, "2026-11-05T10:00:00Z")
    return Course(a=a, b=b, a_external=external)


@pytest.fixture
def pseudonym(app: FastAPI, project: Project) -> Callable[[str], str]:
    """A patient's pseudonym in the researcher's project, by the documented formula."""
    return lambda patient_id: expected_pseudonym(app, project, patient_id)


def export(client: TestClient, headers: dict[str, str], path: str = "/v1/research/export", **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


def read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), dtype={"patient_id": str}, keep_default_na=False, na_values=[""])


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [{str(key): value for key, value in record.items()} for record in cleaned.to_dict("records")]


def test_the_long_csv_has_one_row_per_score_per_current_measurement(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], pseudonym: Callable[[str], str]
) -> None:
    response = export(client, researcher, instruments="phq9,gad7")

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="research-export-long-scores.csv"' in response.headers["content-disposition"]
    frame = read_csv(response.content)
    assert list(frame.columns) == [
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
    by_patient = {pid: rows(group.drop(columns="patient_id")) for pid, group in frame.groupby("patient_id")}
    common = {"instrument_version": "1.0.0", "score_key": "total"}
    assert by_patient[pseudonym(course.a)] == [
        {"session_number": 1, "week": 0, "days_since_first": 0, "instrument": "phq9", **common, "value": 10,
         "band": 3, "band_label": "moderate", "prorated": 0, "flags": "item9_positive"},
        {"session_number": None, "week": 0, "days_since_first": 0, "instrument": "gad7", **common, "value": 14,
         "band": 3, "band_label": "moderate", "prorated": 0, "flags": None},
        # The amended version (18), never the superseded 9; 8 days after day 0 is week 1.
        {"session_number": None, "week": 1, "days_since_first": 8, "instrument": "phq9", **common, "value": 18,
         "band": 4, "band_label": "moderately severe", "prorated": 0, "flags": "item9_positive"},
    ]  # fmt: skip
    assert by_patient[pseudonym(course.b)] == [
        {"session_number": None, "week": 0, "days_since_first": 0, "instrument": "phq9", **common, "value": 9.0,
         "band": 2, "band_label": "mild", "prorated": 1, "flags": "item9_missing"},
    ]  # fmt: skip


def test_the_wide_csv_has_one_row_per_patient_week_with_a_column_per_score(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], pseudonym: Callable[[str], str]
) -> None:
    frame = read_csv(export(client, researcher, layout="wide", instruments="phq9,gad7").content)

    assert list(frame.columns) == [
        "patient_id",
        "week",
        "occasion",
        "session_number",
        "gad7_status",
        "gad7_total",
        "gad7_total_band",
        "gad7_total_band_label",
        "phq9_status",
        "phq9_total",
        "phq9_total_band",
        "phq9_total_band_label",
    ]
    table = {(row.pop("patient_id"), row.pop("week"), row.pop("occasion")): row for row in rows(frame)}
    a, b = pseudonym(course.a), pseudonym(course.b)
    # Bands are coded in increasing order: PHQ-9 minimal 1, mild 2, moderate 3, moderately severe 4, severe 5;
    # GAD-7 minimal 1, mild 2, moderate 3, severe 4. An instrument not given that week is coded -92 (status too).
    not_given = {"gad7_status": -92, "gad7_total": -92, "gad7_total_band": -92, "gad7_total_band_label": None}
    assert table == {
        (a, 0, 1): {"session_number": 1, "gad7_status": 1, "gad7_total": 14, "gad7_total_band": 3,
                    "gad7_total_band_label": "moderate", "phq9_status": 1, "phq9_total": 10, "phq9_total_band": 3,
                    "phq9_total_band_label": "moderate"},
        (a, 1, 1): {"session_number": None, **not_given, "phq9_status": 1, "phq9_total": 18, "phq9_total_band": 4,
                    "phq9_total_band_label": "moderately severe"},
        (b, 0, 1): {"session_number": None, **not_given, "phq9_status": 1, "phq9_total": 9.0, "phq9_total_band": 2,
                    "phq9_total_band_label": "mild"},
    }  # fmt: skip


def test_the_item_level_long_csv_has_every_item_with_its_answer_and_score(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], pseudonym: Callable[[str], str]
) -> None:
    frame = read_csv(export(client, researcher, level="items", instruments="phq9").content)

    b = frame[frame["patient_id"] == pseudonym(course.b)]
    assert list(b["item"]) == list(range(1, 11))
    # Items 9 and 10 unanswered: the unanswered code (-91).
    assert list(b["answer"]) == [1] * 8 + [-91, -91]
    assert list(b["item_score"]) == [1] * 8 + [-91, -91]
    assert len(frame) == 3 * 10  # three current PHQ-9s of ten items each


def test_wide_item_columns_carry_the_answers_of_the_week(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], pseudonym: Callable[[str], str]
) -> None:
    frame = read_csv(export(client, researcher, layout="wide", level="items", instruments="phq9").content)

    assert list(frame.columns) == [
        "patient_id", "week", "occasion", "session_number", "phq9_status", *(f"phq9_i{n}" for n in range(1, 11))
    ]  # fmt: skip
    a_week_0 = frame[(frame["patient_id"] == pseudonym(course.a)) & (frame["week"] == 0)]
    assert [int(v) for v in a_week_0.iloc[0, 5:14]] == [ISSUE_PHQ9[str(n)] for n in range(1, 10)]


def test_a_researchers_period_filter_is_widened_to_whole_months(
    client: TestClient, course: Course, researcher: dict[str, str]
) -> None:
    november = read_csv(export(client, researcher, instruments="phq9", **{"from": "2026-11-20T00:00:00Z"}).content)
    december = read_csv(export(client, researcher, instruments="phq9", **{"from": "2026-12-01T00:00:00Z"}).content)
    october = read_csv(export(client, researcher, instruments="phq9", to="2026-10-31T23:59:59Z").content)

    # Exact bounds would reveal dates (move `from` a day at a time); 20 November widens to 1 November, so all three
    # November PHQ-9s are in, while December and October hold none.
    assert len(november) == 3
    assert len(december) == len(october) == 0


def test_an_exact_period_does_not_move_the_patients_time_origin(
    client: TestClient, course: Course, admin: dict[str, str]
) -> None:
    path = "/v1/research/export/identified"
    frame = read_csv(export(client, admin, path, instruments="phq9", **{"from": "2026-11-03T00:00:00Z"}).content)

    # Only A's day-8 PHQ-9 and B's day-0 PHQ-9 are on or after 3 November; A's stays on day 8.
    assert sorted(zip(frame["patient_id"], frame["days_since_first"], strict=True)) == sorted(
        [(course.a, 8), (course.b, 0)]
    )


@pytest.mark.parametrize("export_format", ["parquet", "sav", "dta"])
def test_identified_exports_carry_utc_times_in_every_format(
    client: TestClient, course: Course, admin: dict[str, str], export_format: str, tmp_path: Path
) -> None:
    content = export(client, admin, "/v1/research/export/identified", format=export_format, instruments="gad7").content

    if export_format == "parquet":
        frame = pq.read_table(io.BytesIO(content)).to_pandas()
        times = [value.isoformat() for value in frame["measured_at"]]
        assert times == ["2026-11-02T09:30:00+00:00"]
    else:
        path = tmp_path / f"identified.{export_format}"
        path.write_bytes(content)
        reader = pyreadstat.read_sav if export_format == "sav" else pyreadstat.read_dta
        frame, _meta = reader(str(path))
        assert [str(value) for value in frame["measured_at"]] == ["2026-11-02 09:30:00"]
    assert list(frame["external_id"]) == [course.a_external]
    assert list(frame["value"]) == [14.0]


def test_parquet_round_trips_with_labels(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], pseudonym: Callable[[str], str]
) -> None:
    response = export(client, researcher, format="parquet", layout="wide", instruments="phq9")

    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    frame = table.to_pandas()
    a = frame[frame["patient_id"] == pseudonym(course.a)].sort_values("week")
    assert list(a["phq9_total"]) == [10.0, 18.0]
    assert list(a["phq9_total_band"]) == [3, 4]
    field = table.schema.field("phq9_total_band")
    assert field.metadata[b"label"] == b"PHQ-9 total score: band"
    assert b'"4": "moderately severe"' in field.metadata[b"value_labels"]


@pytest.mark.parametrize("export_format", ["sav", "dta"])
def test_spss_and_stata_files_carry_variable_and_value_labels(
    client: TestClient,
    clinic: ClinicKeys,
    course: Course,
    researcher: dict[str, str],
    pseudonym: Callable[[str], str],
    export_format: str,
    tmp_path: Path,
) -> None:
    response = export(client, researcher, format=export_format, layout="wide", instruments="phq9,gad7")
    path = tmp_path / f"export.{export_format}"
    path.write_bytes(response.content)

    reader = pyreadstat.read_sav if export_format == "sav" else pyreadstat.read_dta
    frame, meta = reader(str(path))
    labelled, _ = reader(str(path), apply_value_formats=True)
    assert meta.column_names_to_labels["phq9_total"] == "PHQ-9 total score"
    assert meta.column_names_to_labels["gad7_total_band"] == "GAD-7 total score: band"
    phq9_bands = meta.variable_value_labels["phq9_total_band"]
    assert {int(code): label for code, label in phq9_bands.items() if not isinstance(code, str) and code > 0} == {
        1: "minimal",
        2: "mild",
        3: "moderate",
        4: "moderately severe",
        5: "severe",
    }
    a = pseudonym(course.a)
    assert sorted(frame.loc[frame["patient_id"] == a, "phq9_total"]) == [10.0, 18.0]
    assert set(labelled.loc[labelled["patient_id"] == a, "phq9_total_band"]) == {"moderate", "moderately severe"}


def test_long_spss_export_labels_prorated(
    client: TestClient, course: Course, researcher: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "long.sav"
    path.write_bytes(export(client, researcher, format="sav", instruments="phq9").content)

    frame, meta = pyreadstat.read_sav(str(path))
    assert {int(code): label for code, label in meta.variable_value_labels["prorated"].items()} == {0: "no", 1: "yes"}
    assert sorted(frame["value"]) == [9.0, 10.0, 18.0]


def test_nothing_identifying_leaves_in_a_de_identified_export(
    client: TestClient, clinic: ClinicKeys, course: Course, researcher: dict[str, str], admin: dict[str, str]
) -> None:
    loaded = client.put(
        "/v1/instruments/phq9/text",
        json={"licence_note": "clinic licence", "items": {"1": PRIVATE_WORDING}},
        headers=admin,
    )
    assert loaded.status_code == 200, loaded.text

    for params in (
        {"format": "csv"},
        {"format": "csv", "level": "items"},
        {"format": "csv", "layout": "wide", "level": "items"},
        {"format": "parquet"},
    ):
        content = export(client, researcher, **params).content
        for secret in (course.a, course.b, uuid.UUID(course.a).hex, course.a_external, AMENDMENT_REASON):
            assert secret.encode() not in content, (params, secret)
        assert PRIVATE_WORDING.encode() not in content
        for date in MEASUREMENT_DATES:
            assert date.encode() not in content, (params, date)
    codebook = client.get("/v1/research/codebook", params={"level": "items"}, headers=researcher).text
    assert PRIVATE_WORDING not in codebook


def test_pseudonyms_are_stable_within_a_project_and_differ_between_projects(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    course: Course,
    researcher: dict[str, str],
    pseudonym: Callable[[str], str],
) -> None:
    trial_b = new_project(client, clinic, name="trial-b")
    first = set(read_csv(export(client, researcher, instruments="phq9").content)["patient_id"])
    again = set(read_csv(export(client, researcher, instruments="phq9").content)["patient_id"])
    other = set(read_csv(export(client, trial_b.headers, instruments="phq9").content)["patient_id"])

    assert first == again == {pseudonym(course.a), pseudonym(course.b)}
    assert other == {expected_pseudonym(app, trial_b, course.a), expected_pseudonym(app, trial_b, course.b)}
    assert not first & other


def test_only_the_callers_clinic_is_exported(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    other_clinic: ClinicKeys,
    course: Course,
    researcher: dict[str, str],
) -> None:
    theirs = new_patient(client, other_clinic)
    measure(client, other_clinic, theirs, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z")
    their_project = new_project(client, other_clinic)

    ours = read_csv(export(client, researcher, instruments="phq9").content)
    their_export = read_csv(export(client, their_project.headers, instruments="phq9").content)

    assert len(ours) == 3
    assert list(their_export["patient_id"]) == [expected_pseudonym(app, their_project, theirs)]


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.INTEGRATION])
def test_roles_without_research_export_are_refused(client: TestClient, clinic: ClinicKeys, role: Role) -> None:
    for path in ("/v1/research/export", "/v1/research/codebook"):
        response = client.get(path, headers=clinic.headers(role))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


def test_a_researcher_may_not_export_identified_data_or_read_the_export_record(
    client: TestClient, researcher: dict[str, str]
) -> None:
    assert client.get("/v1/research/export/identified", headers=researcher).status_code == 403
    assert client.get("/v1/research/exports", headers=researcher).status_code == 403
    assert client.get("/v1/research/codebook", params={"identified": "true"}, headers=researcher).status_code == 403


def test_an_admin_identified_export_has_ids_and_times_and_is_recorded(
    client: TestClient, clinic: ClinicKeys, course: Course, admin: dict[str, str]
) -> None:
    response = export(client, admin, "/v1/research/export/identified", instruments="phq9")

    frame = read_csv(response.content)
    assert 'filename="identified-export-long-scores.csv"' in response.headers["content-disposition"]
    a = frame[frame["patient_id"] == course.a]
    assert set(a["external_id"]) == {course.a_external}
    assert list(a["measured_at"]) == ["2026-11-02T09:00:00Z", "2026-11-10T08:00:00Z"]
    assert AMENDMENT_REASON.encode() not in response.content
    records = client.get("/v1/research/exports", params={"identified": "true"}, headers=admin).json()
    [record] = records
    assert record["identified"] is True
    assert record["role"] == "admin"
    assert record["api_key_id"] == str(clinic.key_ids[Role.ADMIN])
    assert record["parameters"] == {
        "format": "csv",
        "layout": "long",
        "level": "scores",
        "instruments": ["phq9"],
        "from": None,
        "to": None,
        "project": None,
    }


def test_de_identified_exports_are_recorded_too(
    client: TestClient, clinic: ClinicKeys, project: Project, researcher: dict[str, str], admin: dict[str, str]
) -> None:
    export(client, researcher, format="parquet", layout="wide", project=project.name)

    [record] = client.get("/v1/research/exports", headers=admin).json()
    assert (record["identified"], record["role"]) == (False, "researcher")
    assert record["parameters"]["project"] == project.name
    assert record["parameters"]["format"] == "parquet"


def test_an_export_with_no_data_is_a_header_only_csv(client: TestClient, researcher: dict[str, str]) -> None:
    content = export(client, researcher, instruments="gad7", layout="wide").content

    # Only instruments with data have columns, unless all of them are asked for.
    assert content == b"patient_id,week,occasion,session_number\n"
    every = export(client, researcher, instruments="gad7", layout="wide", all_instruments="true").content
    assert every == (
        b"patient_id,week,occasion,session_number,gad7_status,gad7_total,gad7_total_band,gad7_total_band_label\n"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"instruments": "phq9,phq10"}, "instruments"),
        ({"format": "xlsx"}, "format"),
        ({"layout": "tall"}, "layout"),
        ({"project": "Not A Slug!"}, "project"),
        ({"from": "2026-11-03T00:00:00"}, "from"),
    ],
)
def test_invalid_export_parameters_are_a_problem_naming_the_field(
    client: TestClient, researcher: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/research/export", params=params, headers=researcher)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("export_format", ["sav", "dta", "parquet"])
def test_an_empty_export_is_a_valid_empty_file(
    client: TestClient, researcher: dict[str, str], export_format: str, tmp_path: Path
) -> None:
    content = export(client, researcher, format=export_format, instruments="gad7").content

    path = tmp_path / f"empty.{export_format}"
    path.write_bytes(content)
    if export_format == "parquet":
        frame = pq.read_table(path).to_pandas()
    else:
        frame, _meta = (pyreadstat.read_sav if export_format == "sav" else pyreadstat.read_dta)(str(path))
    assert len(frame) == 0
    assert "score_key" in frame.columns
