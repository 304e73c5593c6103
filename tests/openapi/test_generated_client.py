"""A client generated with openapi-python-client 0.29.1 from ``/openapi.json``, as an app builder would make one, used
against a live server (uvicorn on a freshly migrated database of each backend under test): the Parquet and SPSS
exports it downloads read back with pyarrow and pyreadstat, and a 409 parses into the problem's fields.

The generator cannot share the app's venv (it needs an older typer); ``make tools`` installs it into ``.venv-tools``
(``make test`` does so first; this module runs it too, a no-op once done). The generated package runs there as well,
in a subprocess (``generated_client_check.py``): it needs httpx, which the app's venv does not have.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pyreadstat
import pytest
from sqlalchemy.engine import make_url

from app.auth.permissions import Role
from app.core.config import PROJECT_ROOT
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.reliability.live_server import LiveServer, clinic_with_keys, fresh_database

TOOLS_BIN = PROJECT_ROOT / ".venv-tools" / "bin"
CHECK = Path(__file__).with_name("generated_client_check.py")
MEASUREMENTS = [
    # (patient, PHQ-9 answers, measured at): A week 0 = 10 (3+0+1+2+0+0+1+0+3), A week 1 = 9 × 2 = 18, B week 0 = 9 × 1.
    ("A", ISSUE_PHQ9, "2026-11-02T09:00:00Z"),
    ("A", {str(n): 2 for n in range(1, 10)}, "2026-11-10T09:00:00Z"),
    ("B", {str(n): 1 for n in range(1, 10)}, "2026-11-05T09:00:00Z"),
]


@pytest.fixture(scope="module")
def tools() -> Path:
    """``make tools``: openapi-python-client 0.29.1 and what its clients need, in a venv of their own."""
    uv = Path(sys.executable).with_name("uv")
    command = ["make", "--no-print-directory", "tools", f"PYTHON={sys.executable}"]
    made = subprocess.run(
        [*command, f"UV={uv}"] if uv.exists() else command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return TOOLS_BIN


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    backend = make_url(database_url).get_backend_name()
    directory = tmp_path_factory.mktemp(f"generated-client-{backend}")
    with fresh_database(backend, directory) as url:
        server = LiveServer(database_url=url, log_path=directory / "server.log")
        server.start()
        try:
            yield server
        finally:
            server.stop()


def measured_course(server: LiveServer, clinic: ClinicKeys) -> None:
    """Two patients' PHQ-9s, posted through the API: three patient-weeks in the wide export."""
    with httpx2.Client(base_url=server.base_url, headers=clinic.headers(), timeout=30) as http:
        patients: dict[str, str] = {}
        for name, items, measured_at in MEASUREMENTS:
            if name not in patients:
                created = http.post("/v1/patients", json={})
                assert created.status_code == 201, created.text
                patients[name] = created.json()["id"]
            measured = http.post(
                f"/v1/patients/{patients[name]}/measurements",
                json={"instrument": "phq9", "items": items, "measured_at": measured_at},
            )
            assert measured.status_code == 201, measured.text


def project_researcher_key(server: LiveServer, clinic: ClinicKeys) -> str:
    """A researcher key issued for an opt-out project of the clinic (every patient in its exports)."""
    project = {"name": "generated", "purpose": "A study.", "ethics_reference": "REK 1", "consent_model": "opt_out"}
    with httpx2.Client(base_url=server.base_url, headers=clinic.headers(Role.ADMIN), timeout=30) as http:
        made = http.post("/v1/research/projects", json=project)
        assert made.status_code == 201, made.text
        issued = http.post("/v1/api-keys", json={"role": "researcher", "research_project_id": made.json()["id"]})
        assert issued.status_code == 201, issued.text
        key: str = issued.json()["key"]
        return key


def generated_client(tools: Path, server: LiveServer, directory: Path) -> Path:
    spec = directory / "openapi.json"
    spec.write_bytes(httpx2.get(f"{server.base_url}/openapi.json", timeout=30).content)
    package = directory / "generated_client"
    generated = subprocess.run(
        [tools / "openapi-python-client", "generate", "--path", spec, "--output-path", package, "--meta", "none"],
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # It may leave out what it cannot read (the SVG chart, the CSV/NDJSON import bodies), never what this test uses.
    skipped = [line for line in generated.stdout.splitlines() if line.startswith("WARNING parsing")]
    assert not [line for line in skipped if "/v1/research/export" in line or " /v1/patients " in line], skipped
    assert "problem+json" not in generated.stdout
    return package


def run_client(tools: Path, server: LiveServer, clinic: ClinicKeys, package: Path, directory: Path) -> dict[str, Any]:
    ran = subprocess.run(
        [tools / "python", CHECK, package, directory, "MRN-GENERATED-1"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "CLIENT_BASE_URL": server.base_url,
            "RESEARCHER_KEY": clinic.keys[Role.RESEARCHER],
            "CLINICIAN_KEY": clinic.keys[Role.CLINICIAN],
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    report: dict[str, Any] = json.loads(ran.stdout)
    return report


def totals_by_patient(frame: pd.DataFrame) -> list[list[float]]:
    """Each patient's PHQ-9 totals by week, patients in order of how many weeks they have."""
    ordered = frame.sort_values(["patient_id", "week"])
    totals = [[float(value) for value in group["phq9_total"]] for _, group in ordered.groupby("patient_id")]
    return sorted(totals, key=len)


def test_a_generated_client_downloads_exports_that_read_back_and_parses_a_conflict(
    tools: Path, live: LiveServer, tmp_path: Path
) -> None:
    clinic = clinic_with_keys(live.database_url, "generated client clinic")
    clinic.keys[Role.RESEARCHER] = project_researcher_key(live, clinic)
    measured_course(live, clinic)
    csv_export = httpx2.get(
        f"{live.base_url}/v1/research/export",
        params={"format": "csv", "layout": "wide", "instruments": "phq9"},
        headers=clinic.headers(Role.RESEARCHER),
        timeout=30,
    )
    assert csv_export.status_code == 200, csv_export.text
    columns = list(pd.read_csv(io.BytesIO(csv_export.content), dtype={"patient_id": str}).columns)

    report = run_client(tools, live, clinic, generated_client(tools, live, tmp_path), tmp_path)

    # The files come as the bytes sent, never decoded as text (the client leaves the body in `.content`).
    assert report["parquet"] == {
        "status_code": 200,
        "content_type": "application/vnd.apache.parquet",
        "parsed": "NoneType",
    }
    assert report["sav"] == {"status_code": 200, "content_type": "application/x-spss-sav", "parsed": "NoneType"}
    parquet = pq.read_table(tmp_path / "export.parquet").to_pandas()
    sav, meta = pyreadstat.read_sav(str(tmp_path / "export.sav"))
    for frame in (parquet, sav):
        assert list(frame.columns) == columns
        assert len(frame) == 3
        assert totals_by_patient(frame) == [[9.0], [10.0, 18.0]]
    assert meta.column_names_to_labels["phq9_total"] == "PHQ-9 total score"
    # A 409 parses into the problem's fields (it is declared as application/problem+json, as it is sent).
    assert report["created"] == {"status_code": 201, "parsed": "PatientRead"}
    assert report["conflict"] == {
        "status_code": 409,
        "content_type": "application/problem+json",
        "parsed": "Problem",
        "type": "/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "a patient with this identifier already exists in this clinic",
        "instance": "/v1/patients",
    }
