"""The default export made by PostgreSQL (``postgres_export``) is the Python path's, byte for byte.

On PostgreSQL the de-identified long score export is formatted by the database; every other export, and every
export on SQLite, is built row by row in Python (``export.export_rows``). Each test here exports through the API and
compares with the Python path run directly on the same data, so on SQLite it checks the route and on PostgreSQL it
checks that the database writes what Python would: score order (the definition's keys, then other stored keys),
JSON-null scores left out, number text, empty and quoted fields, prorated, flags, bands, sessions and periods.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from app.core.db import transaction
from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry
from app.measurements.models import Measurement
from app.patients.models import Patient
from app.research import postgres_export, projects, responses
from app.research.export import ExportSpec, export_rows, with_data
from app.research.pseudonyms import Pseudonymiser
from app.research.schemas import Layout, Level
from app.research.service import select_definitions
from app.research.writers import csv_chunks, parquet_chunks
from app.scoring import SCORER_VERSION
from tests.conftest import ISSUE_PHQ9, POSTGRESQL_ONLY, ClinicKeys
from tests.research.conftest import Project, all_items, measure, new_patient, new_project, new_session

SCS_SF_MIXED = {
    "1": 1, "2": 3, "3": 2, "4": 5, "5": 4, "6": 2, "7": 3, "8": 1, "9": 4, "10": 2, "11": 5, "12": 3
}  # fmt: skip
"""Means such as 2.75 and 3.0 (a float that is a whole number)."""
ODD_SCORES: dict[str, Any] = {
    "total": {"value": 2.3333333333333335, "band": None, "prorated": False, "missing_items": []},
    "self_kindness": {"value": 1e-05, "band": None, "prorated": 1, "missing_items": ["2"]},
    "self_judgment": None,
    "common_humanity": {"value": 1.5e-07, "prorated": "yes"},
    "isolation": {"value": None, "band": None, "prorated": True, "missing_items": ["4", "8", "9"]},
    "zeta_retired": {"value": 7, "band": "retired band", "prorated": False, "missing_items": []},
    "a_retired": {"value": -2.5, "band": "", "prorated": 0, "missing_items": []},
    "b_retired": None,
}
"""A SCS-SF stored under an older definition: keys the definition does not list (exported after its own, in stored
order), JSON-null scores, a missing ``mindfulness``, tiny floats, an empty band and truthy ``prorated``."""
ODD_FLAGS = ["item9_positive", 'needs "review", soon']


@dataclass(frozen=True)
class Cohort:
    """Three patients of one clinic: two measured through the API in November, one stored as is in December."""

    clinic: ClinicKeys
    patients: tuple[str, str, str]
    projects: dict[str, Project]
    """Two opt-out projects of the clinic (``study`` and ``trial-b``), each with a researcher key."""


@pytest.fixture
def cohort(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> Cohort:
    a = new_patient(client, clinic, f"MRN-{uuid.uuid4().hex[:8]}")
    first_session = new_session(client, clinic, a, 1, "2026-11-02T08:55:00Z")
    measure(client, clinic, a, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z", first_session)
    measure(client, clinic, a, "gad7", all_items(7, 2), "2026-11-02T09:30:00Z", first_session)
    measure(client, clinic, a, "scs_sf", SCS_SF_MIXED, "2026-11-12T09:00:00Z")
    b = new_patient(client, clinic)
    measure(client, clinic, b, "phq9", {str(n): 1 for n in range(1, 9)}, "2026-11-05T10:00:00Z")
    measure(client, clinic, b, "scs_sf", {str(n): 2 for n in range(1, 9)}, "2026-11-20T10:00:00Z")
    c = new_patient(client, clinic)
    measure(client, clinic, c, "gad7", all_items(7, 0), "2026-11-30T23:00:00Z")
    store_as_is(app, clinic, c, "scs_sf", ODD_SCORES, ODD_FLAGS, datetime(2026, 12, 15, 8, tzinfo=UTC))
    projects = {name: new_project(client, clinic, name=name) for name in ("study", "trial-b")}
    return Cohort(clinic=clinic, patients=(a, b, c), projects=projects)


def store_as_is(
    app: FastAPI,
    clinic: ClinicKeys,
    patient: str,
    instrument: str,
    scores: dict[str, Any],
    flags: list[str],
    measured_at: datetime,
) -> None:
    """Store a measurement with the given scores and flags, not scored by this version of the service."""
    definition = state_of(app).part(InstrumentRegistry).get(instrument)
    items = all_items(len(definition.items), 1)
    row_id = uuid.uuid4()
    row = {
        "id": row_id,
        "measurement_id": row_id,
        "version": 1,
        "is_current": True,
        "clinic_id": clinic.id,
        "patient_id": uuid.UUID(patient),
        "instrument_id": instrument,
        "definition_version": definition.version,
        "scorer_version": SCORER_VERSION,
        "measured_at": measured_at,
        "items": items,
        "complete": True,
        "missing_items": [],
        "scores": scores,
        "flags": flags,
        "warnings": [],
        "source": "import",
        "created_at": measured_at,
    }
    for db in transaction(state_of(app).write_sessions):
        db.execute(insert(Measurement), [row])


def python_path(app: FastAPI, cohort: Cohort, export_format: str, params: dict[str, str]) -> bytes:
    """The export as the Python path builds it, row by row, on the same database."""
    instruments = params.get("instruments")
    chunks = csv_chunks if export_format == "csv" else parquet_chunks
    with state_of(app).read_sessions() as db, db.begin():
        project = projects.get(
            db, clinic_id=cohort.clinic.id, project_id=uuid.UUID(cohort.projects[params.get("project", "study")].id)
        )
        spec = ExportSpec(
            clinic_id=cohort.clinic.id,
            definitions=select_definitions(
                state_of(app).part(InstrumentRegistry), instruments.split(",") if instruments else None
            ),
            layout=Layout.LONG,
            level=Level.SCORES,
            measured_from=_time(params.get("from")),
            measured_to=_time(params.get("to")),
            patients=projects.consenting_patient_ids(project),
        )
        pseudonymise = projects.pseudonymiser(
            project, secret=state_of(app).settings.research_pseudonym_key.get_secret_value()
        )
        spec = with_data(db, spec)  # as the route does: only instruments with data
        return b"".join(chunks(spec.columns, export_rows(db, spec, pseudonymise=pseudonymise)))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def exported(client: TestClient, cohort: Cohort, export_format: str, params: dict[str, str]) -> bytes:
    """The export through the API, by a researcher key of the project named in ``params`` (``study`` if none)."""
    headers = cohort.projects[params.get("project", "study")].headers
    response = client.get("/v1/research/export", params={"format": export_format, **params}, headers=headers)
    assert response.status_code == 200, response.text
    content: bytes = response.content
    return content


def parquet_table(content: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(content))


PERIODS_AND_CHOICES = [
    pytest.param({}, id="everything"),
    pytest.param({"instruments": "scs_sf,phq9"}, id="two-instruments"),
    pytest.param({"from": "2026-12-01T00:00:00Z"}, id="from-december"),
    pytest.param({"to": "2026-11-15T00:00:00Z"}, id="to-november"),
    pytest.param({"instruments": "gad7", "to": "2026-10-31T23:59:59Z"}, id="nothing"),
    pytest.param({"project": "trial-b"}, id="another-project"),
]


@pytest.mark.parametrize("params", PERIODS_AND_CHOICES)
def test_the_csv_is_the_python_paths_byte_for_byte(
    app: FastAPI, client: TestClient, cohort: Cohort, params: dict[str, str]
) -> None:
    assert exported(client, cohort, "csv", params) == python_path(app, cohort, "csv", params)


@pytest.mark.parametrize("params", PERIODS_AND_CHOICES)
def test_the_parquet_table_is_the_python_paths(
    app: FastAPI, client: TestClient, cohort: Cohort, params: dict[str, str]
) -> None:
    ours = parquet_table(exported(client, cohort, "parquet", params))
    python = parquet_table(python_path(app, cohort, "parquet", params))

    assert ours.schema.equals(python.schema, check_metadata=True)
    assert ours.equals(python, check_metadata=True)


def test_the_compared_exports_hold_every_tricky_case(client: TestClient, cohort: Cohort) -> None:
    lines = exported(client, cohort, "csv", {"from": "2026-12-01T00:00:00Z"}).decode().splitlines()
    table = parquet_table(exported(client, cohort, "parquet", {"from": "2026-12-01T00:00:00Z"}))

    # Patient C's stored SCS-SF: the definition's keys present (null ones left out), then the others in stored order
    # (insertion order on SQLite; on PostgreSQL jsonb's, shorter keys first); float text as Python prints it.
    # Key, value, band code, band label, prorated; an unscorable value is the unanswered code (-91).
    fields = [line.split(",")[6:11] for line in lines[1:]]
    assert fields[:4] == [
        ["total", "2.3333333333333335", "", "", "0"],
        ["self_kindness", "1e-05", "", "", "1"],
        ["common_humanity", "1.5e-07", "", "", "1"],
        ["isolation", "-91", "", "", "1"],
    ]
    assert sorted(fields[4:]) == [["a_retired", "-2.5", "", "", "0"], ["zeta_retired", "7", "", "retired band", "0"]]
    # Both flags in one field, quoted as Python's csv quotes it.
    assert all(line.endswith(',"item9_positive;needs ""review"", soon"') for line in lines[1:])
    assert table.column("value").to_pylist()[3] is None  # Parquet: the unanswered code is a null
    assert "" not in table.column("band_label").to_pylist()  # an empty stored band has no label
    everything = exported(client, cohort, "csv", {}).decode()
    assert ",scs_sf,1.0.0,common_humanity,3.0,,,0,\n" in everything  # a whole-number float
    assert ",9.0,2,mild,1,item9_missing\n" in everything  # patient B's prorated PHQ-9
    assert ",14,3,moderate,0,\n" in everything  # GAD-7: a band, no flags (an empty field, as Python writes it)


@POSTGRESQL_ONLY
def test_on_postgresql_no_export_row_is_built_in_python(
    app: FastAPI, client: TestClient, cohort: Cohort, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = python_path(app, cohort, "csv", {})

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the Python path was used")

    monkeypatch.setattr(responses, "export_rows", refuse)
    assert exported(client, cohort, "csv", {}) == expected


@POSTGRESQL_ONLY
def test_parquet_row_groups_are_the_python_paths(app: FastAPI, cohort: Cohort) -> None:
    spec = ExportSpec(
        clinic_id=cohort.clinic.id,
        definitions=select_definitions(state_of(app).part(InstrumentRegistry), None),
        layout=Layout.LONG,
        level=Level.SCORES,
        patients=select(Patient.id).where(Patient.clinic_id == cohort.clinic.id),
    )
    pseudonymise = Pseudonymiser(secret="a project secret", project="default", clinic_id=cohort.clinic.id)

    with state_of(app).read_sessions() as db, db.begin():
        assert postgres_export.applies(db, spec)
        ours = b"".join(postgres_export.parquet_chunks(db, spec, pseudonymise, row_group=4))
        # The clinic's patients (for their pseudonyms) and the rows are read from one snapshot.
        assert db.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
        python = b"".join(parquet_chunks(spec.columns, export_rows(db, spec, pseudonymise=pseudonymise), row_group=4))

    ours_file, python_file = pq.ParquetFile(io.BytesIO(ours)), pq.ParquetFile(io.BytesIO(python))
    assert [ours_file.metadata.row_group(i).num_rows for i in range(ours_file.num_row_groups)] == [
        python_file.metadata.row_group(i).num_rows for i in range(python_file.num_row_groups)
    ]
    assert ours_file.num_row_groups > 2
    assert ours_file.read().equals(python_file.read(), check_metadata=True)


EDGE_NUMBERS: list[int | float] = [
    *(0, 1, -3, 10, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**30),
    *(0.0, 3.0, 9.0, 100.0, 2.3333333333333335, 0.1, -2.5, 12.5, 1 / 3),
    *(1e-4, 1.5e-4, 9.99e-5, 1e-5, -1e-5, 1.5e-7, 5e-324),
    *(1e15, 123456789012345.6, 1234567890123456.7, 9999999999999998.0, 1e16, -1e16, 1.5e16, 1e22, 1e300),
]


@POSTGRESQL_ONLY
@pytest.mark.usefixtures("client")  # the app's lifespan then disposes of its pool at the end of the session
def test_number_text_is_what_python_prints_for_the_decoded_json(app: FastAPI) -> None:
    generator = random.Random(9)
    numbers = [
        *EDGE_NUMBERS,
        *(generator.uniform(-100, 100) for _ in range(500)),
        *(round(generator.uniform(-100, 100), 2) for _ in range(200)),
        *(generator.choice([-1, 1]) * 10 ** generator.uniform(-30, 30) for _ in range(500)),
    ]
    # As stored: the service's encoder writes repr's digits; another writer might leave trailing zeros.
    documents = [json.dumps({"value": number}) for number in numbers]
    documents += ['{"value": 1.50}', '{"value": 3.000}', '{"value": 0.000}', '{"value": 1E2}', '{"value": 1.5e-5}']
    documents += ['{"value": null}', '{"value": "text"}', "{}"]

    query = f"SELECT stored::text, {postgres_export._value_text('stored')} FROM unnest(%s::jsonb[]) AS stored"
    with state_of(app).engine.connect() as connection:
        printed = connection.exec_driver_sql(query, (documents,)).all()

    for stored, written in printed:
        value = orjson.loads(stored).get("value")  # what the Python path reads
        expected = "" if value is None else repr(value) if isinstance(value, float) else str(value)
        assert (written or "") == expected, stored


@POSTGRESQL_ONLY
def test_pseudonyms_reach_the_database_as_data_never_as_statement_text(
    app: FastAPI, client: TestClient, cohort: Cohort, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    copy = psycopg.Cursor.copy

    def recording_copy(cursor: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(statement))
        return copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", recording_copy)
    content = exported(client, cohort, "csv", {})

    pseudonyms = {line.split(",")[0] for line in content.decode().splitlines()[1:]}
    assert len(pseudonyms) == len(cohort.patients)
    assert any("TO STDOUT" in statement for statement in statements)
    # A server that logs slow statements would otherwise keep the key from pseudonym to patient.
    assert not [statement for statement in statements if any(pseudonym in statement for pseudonym in pseudonyms)]


FORMULA_SCORES: dict[str, Any] = {
    "total": {"value": -3, "band": '=HYPERLINK("http://x")', "prorated": False},
    "+1+1": {"value": "-2+3", "band": "@SUM(1)", "prorated": False},
    "\tkey": {"value": -0.5, "band": "\rband", "prorated": False},
}
"""Stored as is: text cells that would start a formula, a JSON string where a number belongs, negative numbers."""
FORMULA_FLAGS = ["-2+3", "x"]


def test_no_text_cell_starts_a_formula_on_either_path(app: FastAPI, client: TestClient, clinic: ClinicKeys) -> None:
    patient = new_patient(client, clinic)
    store_as_is(app, clinic, patient, "scs_sf", FORMULA_SCORES, FORMULA_FLAGS, datetime(2026, 11, 3, 8, tzinfo=UTC))
    alone = Cohort(clinic=clinic, patients=(patient, patient, patient), projects={"study": new_project(client, clinic)})

    ours = exported(client, alone, "csv", {})

    assert ours == python_path(app, alone, "csv", {})
    rows = list(csv.reader(io.StringIO(ours.decode(), newline="")))[1:]
    # Stored keys other than the definition's come in stored order (jsonb's on PostgreSQL): compared sorted.
    assert sorted(row[6:12] for row in rows) == sorted(
        [
            # key, value, band code (none: not a band of the definition; SCS-SF has no bands), band label, ...
            ["'+1+1", "'-2+3", "", "'@SUM(1)", "0", "'-2+3;x"],
            ["'\tkey", "-0.5", "", "'\rband", "0", "'-2+3;x"],
            ["total", "-3", "", '\'=HYPERLINK("http://x")', "0", "'-2+3;x"],
        ]
    )
