"""Missing-data codes and clean exports: unanswered, not administered, declined and missed read back as four
different codes in SPSS, Stata (pyreadstat) and R (haven); two PHQ-9s of a week both stay in the wide layout; one
band coding in every layout; whole labels and integer formats."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pyreadstat
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.datetimes import CLOCK
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.research.missing import Missing
from tests.care.conftest import NOW, assessments, new_schedule, ok
from tests.conftest import ClinicKeys
from tests.research.conftest import Project, all_items, consent, expected_pseudonym, measure, new_patient, new_project
from tests.research.test_export import export, read_csv
from tests.research.test_postgres_export import Cohort, exported, parquet_table, python_path

UNANSWERED_ITEM_9 = {str(n): 1 for n in range(1, 9)} | {"10": 0}


@pytest.fixture
def course(client: TestClient, clinic: ClinicKeys) -> Iterator[str]:
    """Week 0: two PHQ-9s (the first with item 9 unanswered) and one GAD-7; week 1: a missed PHQ-9 occasion; week 2:
    a declined one (a weekly UTC schedule from 13 November, seen on 20 November)."""
    with CLOCK.frozen_at(NOW):
        patient = new_patient(client, clinic)
        measure(client, clinic, patient, "phq9", UNANSWERED_ITEM_9, "2026-11-06T09:00:00Z")
        measure(client, clinic, patient, "gad7", all_items(7, 2), "2026-11-06T09:10:00Z")
        measure(client, clinic, patient, "phq9", all_items(9, 3), "2026-11-08T09:00:00Z")
        weekly = {"instruments": ["phq9"], "starts_on": "2026-11-13", "every_days": 7, "window_days": 3}
        new_schedule(client, clinic, patient, **weekly, timezone="UTC")
        items = assessments(client, clinic, patient)
        assert [item["status"] for item in items[:2]] == ["missed", "due"]
        base = f"/v1/patients/{patient}/assessments"
        ok(client.post(f"{base}/{items[1]['id']}/decline", json={"reason": "unwell"}, headers=clinic.headers()))
        yield patient


def saved(tmp_path: Path, content: bytes, suffix: str) -> Path:
    path = tmp_path / f"export.{suffix}"
    path.write_bytes(content)
    return path


def by_occasion(frame: pd.DataFrame, column: str) -> dict[tuple[int, int], Any]:
    return {(int(row["week"]), int(row["occasion"])): row[column] for _, row in frame.iterrows()}


WIDE_ITEMS = {"layout": "wide", "level": "items", "instruments": "phq9,gad7"}


def test_a_week_with_two_phq9s_keeps_both_in_the_wide_layout(
    app: FastAPI, client: TestClient, course: str, project: Project, researcher: dict[str, str]
) -> None:
    frame = read_csv(export(client, researcher, layout="wide", instruments="phq9,gad7").content)

    assert set(frame["patient_id"]) == {expected_pseudonym(app, project, course)}
    # Occasion 1 and 2 of week 0 hold the first and second PHQ-9 (8 × 1 prorated to 9.0, then 27); GAD-7 was given
    # once, so occasion 2 codes it not administered (-92). Week 1's PHQ-9 was missed (-94), week 2's declined (-93).
    assert by_occasion(frame, "phq9_total") == {(0, 1): 9.0, (0, 2): 27.0, (1, 1): -94, (2, 1): -93}
    assert by_occasion(frame, "phq9_status") == {(0, 1): 1, (0, 2): 1, (1, 1): -94, (2, 1): -93}
    assert by_occasion(frame, "gad7_total") == {(0, 1): 14, (0, 2): -92, (1, 1): -92, (2, 1): -92}


def test_the_long_layout_has_declined_and_missed_occasions_as_coded_rows(
    client: TestClient, course: str, researcher: dict[str, str]
) -> None:
    scores = read_csv(export(client, researcher, instruments="phq9").content)
    items = read_csv(export(client, researcher, level="items", instruments="phq9").content)

    assert list(zip(scores["days_since_first"], scores["value"], scores["band"], strict=True)) == [
        (0, 9.0, 2),
        (2, 27.0, 5),
        (7, -94, -94),  # missed: window opened 13 November
        (14, -93, -93),  # declined: window opened 20 November
    ]
    first = items[items["days_since_first"] == 0]
    assert list(first["answer"]) == [1] * 8 + [-91, 0]  # item 9 unanswered
    assert set(items.loc[items["days_since_first"] == 14, "item_score"]) == {-93}


@pytest.mark.parametrize("export_format", ["csv", "parquet"])
@pytest.mark.parametrize("params", [{}, {"from": "2026-11-10T00:00:00Z"}, {"instruments": "gad7"}])
def test_postgresql_writes_declined_and_missed_occasions_as_the_python_path_does(
    app: FastAPI,
    client: TestClient,
    clinic: ClinicKeys,
    course: str,
    project: Project,
    export_format: str,
    params: dict[str, str],
) -> None:
    cohort = Cohort(clinic, (course, course, course), {"study": project})
    with CLOCK.frozen_at(NOW):  # what is missed depends on the time
        ours = exported(client, cohort, export_format, params)
        python = python_path(app, cohort, export_format, params)

    if export_format == "csv":
        assert ours == python
        assert (b",-94," in ours) == ("instruments" not in params)
    else:
        assert parquet_table(ours).equals(parquet_table(python), check_metadata=True)


def test_spss_reads_the_four_reasons_as_different_user_missing_codes(
    client: TestClient, course: str, researcher: dict[str, str], tmp_path: Path
) -> None:
    path = saved(tmp_path, export(client, researcher, format="sav", **WIDE_ITEMS).content, "sav")

    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert by_occasion(frame, "phq9_i9") == {(0, 1): -91, (0, 2): 3, (1, 1): -94, (2, 1): -93}
    assert by_occasion(frame, "gad7_i1")[(0, 2)] == -92
    assert meta.missing_ranges["phq9_i9"] == [{"lo": -94.0, "hi": -91.0}]
    labels = meta.variable_value_labels["phq9_i9"]
    assert [labels[code] for code in (-91, -92, -93, -94)] == [code.label for code in Missing]
    # Read without user-missing values, every code is missing.
    plain, _ = pyreadstat.read_sav(str(path))
    assert plain["phq9_i9"].isna().sum() == 3


def test_stata_reads_the_four_reasons_as_extended_missing_values(
    client: TestClient, course: str, researcher: dict[str, str], tmp_path: Path
) -> None:
    path = saved(tmp_path, export(client, researcher, format="dta", **WIDE_ITEMS).content, "dta")

    frame, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert by_occasion(frame, "phq9_i9") == {(0, 1): "a", (0, 2): 3, (1, 1): "d", (2, 1): "c"}
    assert by_occasion(frame, "gad7_i1")[(0, 2)] == "b"
    labels: dict[Any, str] = meta.value_labels["phq9_i9"]
    assert labels["c"] == "Occasion declined"
    # Each variable's value-label set is named as the variable.
    assert all(name == label_set for name, label_set in meta.variable_to_label.items())


def test_parquet_writes_nulls_and_the_status_column_tells_why(
    client: TestClient, course: str, researcher: dict[str, str]
) -> None:
    table = pq.read_table(io.BytesIO(export(client, researcher, format="parquet", **WIDE_ITEMS).content))

    frame = table.to_pandas()
    assert by_occasion(frame, "phq9_status") == {(0, 1): 1, (0, 2): 1, (1, 1): -94, (2, 1): -93}
    assert frame["phq9_i9"].isna().sum() == 3


def test_bands_are_coded_the_same_in_every_layout(
    client: TestClient, course: str, researcher: dict[str, str], tmp_path: Path
) -> None:
    long = read_csv(export(client, researcher, instruments="phq9").content)
    wide = read_csv(export(client, researcher, layout="wide", instruments="phq9").content)

    answered = long[long["band"] > 0]
    assert list(zip(answered["band"], answered["band_label"], strict=True)) == [(2, "mild"), (5, "severe")]
    completed = wide[wide["phq9_status"] == 1]
    assert list(zip(completed["phq9_total_band"], completed["phq9_total_band_label"], strict=True)) == [
        (2, "mild"),
        (5, "severe"),
    ]
    sav = export(client, researcher, format="sav", instruments="phq9").content
    _, meta = pyreadstat.read_sav(str(saved(tmp_path, sav, "sav")))
    assert meta.variable_value_labels["band"][5.0] == "severe"


def test_labels_are_whole_where_the_format_allows_and_integers_display_as_integers(
    client: TestClient, course: str, researcher: dict[str, str], tmp_path: Path
) -> None:
    require_r_haven()
    sav = saved(
        tmp_path, export(client, researcher, format="sav", layout="wide", all_instruments="true").content, "sav"
    )
    dta = saved(
        tmp_path, export(client, researcher, format="dta", layout="wide", all_instruments="true").content, "dta"
    )

    _, spss = pyreadstat.read_sav(str(sav))
    _, stata = pyreadstat.read_dta(str(dta))
    spss_labels = [label or "" for label in spss.column_names_to_labels.values()]
    assert max(map(len, spss_labels)) > 80  # SPSS keeps a long label whole
    assert max(len(label or "") for label in stata.column_names_to_labels.values()) <= 80  # Stata's limit
    assert spss.original_variable_types["phq9_total_band"] == "F8.0"
    assert spss.original_variable_types["week"] == "F8.0"
    assert stata.original_variable_types["phq9_total_band"] == "%8.0g"


def test_the_codes_lie_below_every_score_and_item_of_the_shipped_instruments(app: FastAPI) -> None:
    registry = state_of(app).part(InstrumentRegistry)
    lowest = min(
        [score.minimum for definition in registry.definitions.values() for score in definition.scores]
        + [
            float(option.value)
            for definition in registry.definitions.values()
            for item in definition.items
            for option in definition.options_for(item)
            if isinstance(option.value, int)
        ]
    )
    assert max(Missing) < lowest


R_CHECK = """
library(haven)
sav <- read_sav(Sys.getenv("SAV"), user_na = TRUE)
dta <- read_dta(Sys.getenv("DTA"))
cat("sav", paste(as.numeric(sav$phq9_i9), collapse = " "), "\\n")
cat("sav_na", paste(is.na(sav$phq9_i9), collapse = " "), "\\n")
cat("dta", paste(ifelse(is.na(na_tag(dta$phq9_i9)), "-", na_tag(dta$phq9_i9)), collapse = " "), "\\n")
cat("dta_na", paste(is.na(dta$phq9_i9), collapse = " "), "\\n")
"""


def require_r_haven() -> None:
    """R and haven must be there (`make test` installs Debian's r-base-core and r-cran-haven): never skipped."""
    assert shutil.which("Rscript") is not None, "Rscript is missing: run `make test` (it installs R and haven)"
    found = subprocess.run(["Rscript", "-e", "library(haven)"], capture_output=True, check=False)
    assert found.returncode == 0, "R's haven is missing: run `make test` (it installs r-cran-haven)"


def test_r_haven_reads_user_defined_and_tagged_missing_values(
    client: TestClient, course: str, researcher: dict[str, str], tmp_path: Path
) -> None:
    require_r_haven()
    sav = saved(tmp_path, export(client, researcher, format="sav", **WIDE_ITEMS).content, "sav")
    dta = saved(tmp_path, export(client, researcher, format="dta", **WIDE_ITEMS).content, "dta")

    result = subprocess.run(
        ["Rscript", "-e", R_CHECK],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SAV": str(sav), "DTA": str(dta)},
        timeout=120,
    )
    lines = dict(line.strip().split(" ", 1) for line in result.stdout.strip().splitlines())
    # Rows in (week, occasion) order: unanswered, answered 3, missed, declined.
    assert lines["sav"] == "-91 3 -94 -93"
    assert lines["sav_na"] == "TRUE FALSE TRUE TRUE"
    assert lines["dta"] == "a - d c"
    assert lines["dta_na"] == "TRUE FALSE TRUE TRUE"


@pytest.mark.parametrize(("layout", "level"), [("long", "scores"), ("wide", "scores"), ("wide", "items")])
def test_the_codebook_describes_the_exports_columns_only_instruments_with_data(
    client: TestClient, course: str, researcher: dict[str, str], layout: str, level: str
) -> None:
    header = export(client, researcher, layout=layout, level=level).content.decode().splitlines()[0].split(",")
    response = client.get("/v1/research/codebook", params={"layout": layout, "level": level}, headers=researcher)

    assert response.status_code == 200, response.text
    assert [field["name"] for field in response.json()["resources"][0]["schema"]["fields"]] == header
    if layout == "wide":
        assert {name.split("_")[0] for name in header[4:]} == {"gad7", "phq9"}


def test_declined_and_missed_occasions_are_exported_only_for_the_projects_consenting_patients(
    client: TestClient, clinic: ClinicKeys, course: str
) -> None:
    opt_in = new_project(client, clinic, name="opt-in-study", consent_model="opt_in")

    before = read_csv(export(client, opt_in.headers, instruments="phq9").content)
    consent(client, clinic, course, opt_in, "granted", "2026-11-19T12:00:00Z")
    after = read_csv(export(client, opt_in.headers, instruments="phq9").content)

    assert len(before) == 0  # not even the missed and declined weeks of a patient who did not consent
    assert sorted(after["value"]) == [-94, -93, 9.0, 27.0]
