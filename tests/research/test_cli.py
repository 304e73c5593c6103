"""``python -m app research …``: generate a cohort, import it, analyse it, with progress on stderr."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from app.auth import service as auth
from app.auth.models import Clinic
from app.core.config import get_settings
from app.core.db import make_sessionmaker, transaction
from app.core.migrations import upgrade_to_head
from app.measurements.models import Measurement
from app.research.cli import research_cli

runner = CliRunner()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'research.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    for db in transaction(make_sessionmaker(engine)):
        auth.get_or_create_clinic(db, name="North Clinic")
    engine.dispose()
    return url


@pytest.fixture
def environment(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", database)
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def stored(database: str) -> int:
    engine = create_engine(database)
    with engine.connect() as connection:
        count = int(connection.scalar(select(func.count()).select_from(Measurement)) or 0)
    engine.dispose()
    return count


def test_generate_writes_the_latent_panel_and_import_records(tmp_path: Path, environment: str) -> None:
    latent, records = tmp_path / "latent.csv", tmp_path / "cohort.csv"

    result = runner.invoke(
        research_cli,
        [
            "generate",
            "--seed",
            "9",
            "--patients",
            "3",
            "--weeks",
            "5",
            "--latent",
            str(latent),
            "--output",
            str(records),
        ],
    )

    assert result.exit_code == 0, result.output
    with latent.open() as handle:
        panel = list(csv.DictReader(handle))
    assert len(panel) == 3 * 5
    assert list(panel[0]) == ["patient", "week", "D", "F", "S"]
    with records.open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    # One PHQ-9, FCS (from others) and SCS-SF per patient-week; FCS has the most items (13).
    assert len(rows) == 3 * 5 * 3
    assert reader.fieldnames is not None
    assert reader.fieldnames[-1] == "item_13"
    assert {row["external_id"] for row in rows} == {"synthetic-9-0001", "synthetic-9-0002", "synthetic-9-0003"}
    assert "known effects" in result.stderr


def test_import_stores_a_generated_file_with_a_progress_bar(tmp_path: Path, environment: str) -> None:
    records = tmp_path / "cohort.ndjson"
    generated = runner.invoke(
        research_cli, ["generate", "--seed", "10", "--patients", "2", "--weeks", "4", "--output", str(records)]
    )
    assert generated.exit_code == 0, generated.output
    before = stored(environment)

    result = runner.invoke(research_cli, ["import", str(records), "--clinic", "North Clinic", "--create-patients"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 2 patients × 4 weeks × 3 instruments; sessions 1–4 for each patient.
    assert report == {
        "rows": 24,
        "imported": 24,
        "patients_created": 2,
        "sessions_created": 8,
        "by_instrument": {"fcs_from_others": 8, "phq9": 8, "scs_sf": 8},
    }
    assert "Storing" in result.stderr
    assert stored(environment) == before + 24


def test_a_rejected_import_lists_the_rows_and_stores_nothing(tmp_path: Path, environment: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "external_id,instrument,measured_at,item_1,item_2,item_3,item_4,item_5,item_6,item_7,item_8,item_9\n"
        "X-1,phq9,2026-11-02T09:00:00Z,0,0,0,0,0,0,0,0,0\n"
        "X-1,phq9,2026-11-09T09:00:00Z,0,0,0,9,0,0,0,0,0\n"
    )
    before = stored(environment)

    result = runner.invoke(research_cli, ["import", str(bad), "--clinic", "North Clinic", "--create-patients"])

    assert result.exit_code == 1
    assert "1 row(s) rejected; nothing was imported" in result.stderr
    assert 'line 3: items.4: item "4" = 9 is outside 0–3' in result.stderr
    assert stored(environment) == before


def test_generate_into_a_clinic_then_analyse_it(environment: str) -> None:
    generated = runner.invoke(
        research_cli, ["generate", "--seed", "11", "--patients", "6", "--weeks", "8", "--clinic", "South Clinic"]
    )
    assert generated.exit_code == 0, generated.output
    assert json.loads(generated.stdout)["imported"] == 6 * 8 * 3

    result = runner.invoke(
        research_cli,
        [
            "lagged-effects",
            "--clinic",
            "South Clinic",
            "--outcome",
            "phq9.total",
            "--predictor",
            "fcs_from_others.total",
            "--predictor",
            "scs_sf.total",
            "--method",
            "within",
        ],
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    # Weeks 1…7 of each of the 6 patients have a week-earlier value.
    assert (body["n_patients"], body["n_observations"]) == (6, 42)
    assert [e["predictor"] for e in body["effects"]][0] == "fcs_from_others.total (t−1)"
    assert "Done" in result.stderr


def test_generate_refuses_a_real_clinic_and_marks_the_clinic_it_creates_synthetic(environment: str) -> None:
    before = stored(environment)

    refused = runner.invoke(
        research_cli, ["generate", "--seed", "5", "--patients", "2", "--weeks", "2", "--clinic", "North Clinic"]
    )
    created = runner.invoke(
        research_cli, ["generate", "--seed", "5", "--patients", "2", "--weeks", "2", "--clinic", "West Clinic"]
    )

    assert refused.exit_code == 1
    assert "'North Clinic' is a real clinic" in refused.stderr
    assert created.exit_code == 0, created.output
    assert stored(environment) == before + 2 * 2 * 3
    engine = create_engine(environment)
    with engine.connect() as connection:
        marks = {row.name: row.synthetic for row in connection.execute(select(Clinic.name, Clinic.synthetic))}
    engine.dispose()
    assert (marks["North Clinic"], marks["West Clinic"]) == (False, True)


def test_lagged_effects_on_a_latent_panel_file(tmp_path: Path, environment: str) -> None:
    latent = tmp_path / "latent.csv"
    runner.invoke(
        research_cli, ["generate", "--seed", "3", "--patients", "30", "--weeks", "10", "--latent", str(latent)]
    )

    result = runner.invoke(
        research_cli,
        ["lagged-effects", "--panel", str(latent), "--outcome", "D", "--predictor", "F", "--predictor", "S"],
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["n_patients"], body["n_observations"]) == (30, 30 * 9)
    assert body["specification"]["method"] == "mixedlm"


@pytest.mark.parametrize(
    "arguments",
    [
        ["lagged-effects", "--outcome", "phq9.total", "--predictor", "scs_sf.total"],
        ["lagged-effects", "--clinic", "Nowhere", "--outcome", "phq9.total", "--predictor", "scs_sf.total"],
        ["generate", "--patients", "3"],
        ["generate", "--missing", "1.5", "--latent", "x.csv"],
    ],
)
def test_incomplete_or_impossible_commands_exit_with_a_message(arguments: list[str], environment: str) -> None:
    result = runner.invoke(research_cli, arguments)

    assert result.exit_code == 2
    assert result.stderr.strip()
