"""Bulk import: scored like single posts, all or nothing per file, with every rejected row reported."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.permissions import Role
from app.core.state import state_of
from app.measurements.models import Measurement
from app.therapy_sessions.models import TherapySession
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.research.conftest import measure, ndjson, new_patient

IMPORTS = "/v1/research/imports"
CSV_HEADER = ",".join(
    ["external_id", "instrument", "measured_at", "session_number", *(f"item_{n}" for n in range(1, 10))]
)


def stored(app: FastAPI, clinic: ClinicKeys) -> int:
    with state_of(app).read_sessions() as db:
        query = select(func.count()).select_from(Measurement).where(Measurement.clinic_id == clinic.id)
        return int(db.scalar(query) or 0)


def post(client: TestClient, headers: dict[str, str], body: bytes, media_type: str, **params: Any) -> Any:
    return client.post(IMPORTS, content=body, params=params, headers={**headers, "Content-Type": media_type})


def csv_file(*lines: str) -> bytes:
    return ("\n".join([CSV_HEADER, *lines]) + "\n").encode()


def test_a_csv_file_is_scored_and_stored_like_single_posts(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    patient = new_patient(client, clinic, "MRN-1")
    body = csv_file(
        "MRN-1,phq9,2026-11-02T09:00:00+01:00,1,3,0,1,2,0,0,1,0,3",
        "MRN-1,phq9,2026-11-09T09:00:00+01:00,2,1,1,1,1,1,1,1,1,",
    )

    response = post(client, importer, body, "text/csv")

    assert response.status_code == 201, response.text
    assert response.json() == {
        "rows": 2,
        "imported": 2,
        "patients_created": 0,
        "sessions_created": 2,
        "by_instrument": {"phq9": 2},
    }
    listed = client.get(f"/v1/patients/{patient}/measurements", headers=clinic.headers()).json()["items"]
    # Row 1 is the issue's PHQ-9: 10, moderate, item 9 positive. Row 2: eight 1s, item 9 blank = missing,
    # prorated 8 × 9 / 8 = 9.0 (mild), flagged item9_missing.
    assert [(m["scores"]["total"]["value"], m["scores"]["total"]["band"]) for m in listed] == [
        (10, "moderate"),
        (9.0, "mild"),
    ]
    assert [m["flags"] for m in listed] == [["item9_positive"], ["item9_missing"]]
    assert {m["source"] for m in listed} == {"import"}
    assert listed[0]["measured_at"] == "2026-11-02T08:00:00Z"
    sessions = client.get(f"/v1/patients/{patient}/sessions", headers=clinic.headers()).json()["items"]
    assert [s["session_number"] for s in sessions] == [1, 2]
    assert listed[0]["session_id"] == sessions[0]["id"]


def test_an_ndjson_file_with_item_codes_is_imported(
    client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    patient = new_patient(client, clinic, "MRN-2")
    bdi = {str(n): 1 for n in range(1, 22)} | {"16": "2a", "18": "1b"}
    body = ndjson(
        [
            {"external_id": "MRN-2", "instrument": "phq9", "measured_at": "2026-11-02T09:00:00Z", "items": ISSUE_PHQ9},
            {"external_id": "MRN-2", "instrument": "bdi2", "measured_at": "2026-11-02T09:10:00Z", "items": bdi},
        ]
    )

    response = post(client, importer, body, "application/x-ndjson")

    assert response.status_code == 201, response.text
    assert response.json()["by_instrument"] == {"bdi2": 1, "phq9": 1}
    listed = client.get(f"/v1/patients/{patient}/measurements?instrument=bdi2", headers=clinic.headers()).json()
    # 19 items × 1 + item 16 "2a" (scores 2) + item 18 "1b" (scores 1) = 22.
    assert listed["items"][0]["scores"]["total"]["value"] == 22


def test_one_bad_row_rejects_the_file_and_every_rejected_row_is_reported(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    new_patient(client, clinic, "MRN-3")
    body = csv_file(
        "MRN-3,phq9,2026-11-02T09:00:00Z,,3,0,1,2,0,0,1,0,3",  # line 2: fine
        "MRN-3,phq9,2026-11-09T09:00:00Z,,3,0,1,7,0,0,1,0,3",  # line 3: item 4 = 7
        "MRN-404,phq9,2026-11-09T09:00:00Z,,0,0,0,0,0,0,0,0,0",  # line 4: unknown patient
        "MRN-3,phq10,2026-11-16T09:00:00Z,,0,0,0,0,0,0,0,0,0",  # line 5: unknown instrument
        "MRN-3,phq9,2026-11-23T09:00:00,,0,0,0,0,0,0,0,0,0",  # line 6: no time zone
        "MRN-3,phq9,2026-11-02T09:00:00Z,,0,0,0,0,0,0,0,0,0",  # line 7: same as line 2
    )

    response = post(client, importer, body, "text/csv")

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert problem["rows"] == 6
    assert problem["rows_rejected"] == 5
    assert [(r["row"], r["field"]) for r in problem["rejected_rows"]] == [
        (3, "items.4"),
        (4, "external_id"),
        (5, "instrument"),
        (6, "measured_at"),
        (7, "measured_at"),
    ]
    assert problem["rejected_rows"][0]["message"] == 'item "4" = 7 is outside 0–3'
    assert "line 2" in problem["rejected_rows"][4]["message"]
    assert problem["errors"][0]["pointer"] == "#/rows/3/items/4"
    assert stored(app, clinic) == 0


def test_a_file_already_imported_is_refused_as_a_whole(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    new_patient(client, clinic, "MRN-4")
    body = csv_file("MRN-4,phq9,2026-11-02T09:00:00Z,,3,0,1,2,0,0,1,0,3")
    assert post(client, importer, body, "text/csv").status_code == 201

    again = post(client, importer, body, "text/csv")

    assert again.status_code == 422
    assert again.json()["rejected_rows"] == [
        {
            "row": 2,
            "field": "measured_at",
            "message": "this patient already has a measurement of this instrument at this time",
        }
    ]
    assert stored(app, clinic) == 1


def test_creating_patients_needs_patients_write(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    body = csv_file("NEW-1,phq9,2026-11-02T09:00:00Z,1,3,0,1,2,0,0,1,0,3")

    refused = post(client, clinic.headers(Role.RESEARCHER), body, "text/csv", create_patients="true")
    accepted = post(client, clinic.headers(Role.INTEGRATION), body, "text/csv", create_patients="true")

    assert refused.status_code == 403
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["patients_created"], accepted.json()["sessions_created"]) == (1, 1)
    found = client.get("/v1/patients", params={"external_id": "NEW-1"}, headers=clinic.headers()).json()["items"]
    assert len(found) == 1


def test_patients_of_another_clinic_are_unknown(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, other_clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    new_patient(client, other_clinic, "THEIRS-1")

    response = post(client, importer, csv_file("THEIRS-1,phq9,2026-11-02T09:00:00Z,,0,0,0,0,0,0,0,0,0"), "text/csv")

    assert response.status_code == 422
    assert response.json()["rejected_rows"][0]["field"] == "external_id"
    assert stored(app, other_clinic) == 0


def test_a_replayed_import_with_the_same_idempotency_key_stores_once(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    new_patient(client, clinic, "MRN-5")
    body = csv_file("MRN-5,phq9,2026-11-02T09:00:00Z,,3,0,1,2,0,0,1,0,3")
    headers = {**importer, "Idempotency-Key": f"import-{uuid.uuid4()}"}

    first = post(client, headers, body, "text/csv")
    second = post(client, headers, body, "text/csv")

    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert stored(app, clinic) == 1


def test_an_existing_session_number_is_reused(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    patient = new_patient(client, clinic, "MRN-6")
    made = client.post(
        f"/v1/patients/{patient}/sessions",
        json={"session_number": 4, "started_at": "2026-11-02T08:00:00Z"},
        headers=clinic.headers(),
    ).json()

    response = post(client, importer, csv_file("MRN-6,phq9,2026-11-02T09:00:00Z,4,0,0,0,0,0,0,0,0,0"), "text/csv")

    assert response.json()["sessions_created"] == 0
    [row] = client.get(f"/v1/patients/{patient}/measurements", headers=clinic.headers()).json()["items"]
    assert row["session_id"] == made["id"]
    with state_of(app).read_sessions() as db:
        count = db.scalar(select(func.count()).select_from(TherapySession).where(TherapySession.clinic_id == clinic.id))
    assert count == 1


def test_a_bad_header_or_an_unreadable_line_is_reported(client: TestClient, importer: dict[str, str]) -> None:
    header = post(client, importer, b"patient,instrument,measured_at,q1\nx,phq9,2026-11-02T09:00:00Z,1\n", "text/csv")
    lines = post(client, importer, b'{"external_id": "x"\n\n[1, 2]\n', "application/x-ndjson")

    assert header.status_code == 422
    assert [(r["row"], r["field"]) for r in header.json()["rejected_rows"]] == [
        (1, "external_id"),
        (1, "patient"),
        (1, "q1"),
    ]
    assert lines.status_code == 422
    assert [(r["row"], r["field"]) for r in lines.json()["rejected_rows"]] == [(1, "line"), (3, "line")]


def test_unknown_fields_and_loose_types_are_refused_in_ndjson(client: TestClient, importer: dict[str, str]) -> None:
    record = {"external_id": "x", "instrument": "phq9", "measured_at": "2026-11-02T09:00:00Z", "items": {"1": 2.0}}
    response = post(client, importer, ndjson([{**record, "name": "Kari"}]), "application/x-ndjson")

    assert response.status_code == 422
    assert sorted(r["field"] for r in response.json()["rejected_rows"]) == ["items.1", "name"]


def test_the_media_type_decides_the_format_unless_named(client: TestClient, importer: dict[str, str]) -> None:
    unknown = post(client, importer, b"a,b\n", "application/vnd.ms-excel")
    named = post(client, importer, b"", "application/octet-stream", format="csv")

    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["allowed"] == ["text/csv", "application/x-ndjson"]
    assert named.status_code == 422
    assert named.json()["detail"] == "the file has no records; nothing was imported"


def test_roles_without_import_are_refused(client: TestClient, clinic: ClinicKeys) -> None:
    response = post(client, clinic.headers(Role.CLINICIAN), csv_file(), "text/csv")

    assert response.status_code == 403


def test_an_imported_measurement_is_exported(
    client: TestClient, clinic: ClinicKeys, importer: dict[str, str], researcher: dict[str, str]
) -> None:
    patient = new_patient(client, clinic, "MRN-7")
    measure(client, clinic, patient, "gad7", {str(n): 0 for n in range(1, 8)}, "2026-11-01T09:00:00Z")
    post(client, importer, csv_file("MRN-7,phq9,2026-11-08T09:00:00Z,,3,0,1,2,0,0,1,0,3"), "text/csv")

    exported = client.get("/v1/research/export", params={"instruments": "phq9"}, headers=researcher).text

    # 7 days after the GAD-7 on 1 November: week 1, day 7.
    assert exported.splitlines()[1].split(",")[1:4] == ["", "1", "7"]


def test_an_unauthenticated_upload_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post(IMPORTS, content=b"x" * 10, headers={"Content-Type": "application/vnd.ms-excel"})

    assert response.status_code == 401


def test_csv_declared_totals_are_compared_and_odd_lines_reported(
    client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    patient = new_patient(client, clinic, "MRN-9")
    header = "external_id,instrument,measured_at,declared_total," + ",".join(f"item_{n}" for n in range(1, 10))
    good = f"{header}\nMRN-9,phq9,2026-11-02T09:00:00Z,12,3,0,1,2,0,0,1,0,3\n".encode()
    odd = "\n".join(
        [
            header,
            "MRN-9,phq9,2026-11-09T09:00:00Z,ten,0,0,0,0,0,0,0,0,0",  # a declared total that is no number
            "MRN-9,phq9,2026-11-16T09:00:00Z,0,0,0,0,0,0,0,0,0,0,0",  # one cell too many
        ]
    )

    stored_response = post(client, importer, good, "text/csv")
    rejected = post(client, importer, odd.encode(), "text/csv")
    not_utf8 = post(client, importer, "external_id\nLøvås\n".encode("latin-1"), "text/csv")

    assert stored_response.status_code == 201, stored_response.text
    [row] = client.get(f"/v1/patients/{patient}/measurements", headers=clinic.headers()).json()["items"]
    # Declared 12, computed 3+0+1+2+0+0+1+0+3 = 10: stored, compared, and the computed total is used.
    assert row["declared_total"] == 12
    assert [w["code"] for w in row["warnings"]] == ["declared_total_mismatch"]
    assert [(r["row"], r["field"]) for r in rejected.json()["rejected_rows"]] == [(2, "declared_total"), (3, "line")]
    assert not_utf8.json()["rejected_rows"] == [{"row": 1, "field": "file", "message": "the file is not UTF-8 text"}]


def test_hostile_files_are_refused_as_unreadable(client: TestClient, importer: dict[str, str]) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000

    as_csv = post(client, importer, CSV_HEADER.encode() + b"\n" + nested + b"\n", "text/csv")
    as_ndjson = post(client, importer, nested + b"\n", "application/x-ndjson")

    assert as_csv.status_code == 422
    assert as_csv.json()["rejected_rows"][0]["message"].startswith("not readable as CSV")
    assert as_ndjson.status_code == 422
    assert as_ndjson.json()["rejected_rows"] == [{"row": 1, "field": "line", "message": "not a JSON object"}]


def test_a_researcher_learns_nothing_about_identified_records_by_import(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, researcher: dict[str, str]
) -> None:
    """A researcher sees de-identified data only, so never imports: an import names patients by the clinic's
    identifiers, and its report would say which are patients and which have a measurement at an exact time."""
    patient = new_patient(client, clinic, "MRN-KNOWN")
    measure(client, clinic, patient, "phq9", ISSUE_PHQ9, "2026-11-02T09:00:00Z")
    row = ",phq9,2026-11-02T09:00:00Z,,0,0,0,0,0,0,0,0,0"
    probes = {
        external_id: [
            post(client, researcher, csv_file(external_id + row, external_id + row), "text/csv", **params)
            for params in ({}, {"create_patients": "true"}, {"format": "csv"})
        ]
        for external_id in ("MRN-KNOWN", "MRN-UNKNOWN")
    }

    def seen(response: Any) -> tuple[int, str, str]:
        problem = response.json()
        return response.status_code, problem["detail"], response.text.replace(problem.get("instance", ""), "")

    known, unknown = ([seen(response) for response in probes[name]] for name in ("MRN-KNOWN", "MRN-UNKNOWN"))
    assert known == unknown  # the same answer whether or not the MRN is a patient measured at that time
    assert {status for status, _detail, _text in known} == {403}
    assert all("MRN-" not in text and "2026" not in text for _status, _detail, text in known)
    assert stored(app, clinic) == 1


def test_an_imported_time_outside_1900_to_now_rejects_its_row_naming_measured_at_and_nothing_is_stored(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, importer: dict[str, str]
) -> None:
    new_patient(client, clinic, "MRN-T")
    body = csv_file(
        "MRN-T,phq9,2026-11-02T09:00:00Z,,3,0,1,2,0,0,1,0,3",  # line 2: fine
        "MRN-T,phq9,9999-12-31T23:59:59-12:00,,3,0,1,2,0,0,1,0,3",  # line 3: no UTC datetime holds it
        "MRN-T,phq9,0001-01-01T00:00:00+14:00,,3,0,1,2,0,0,1,0,3",  # line 4: before year 1 in UTC
        "MRN-T,phq9,1899-12-31T23:59:59Z,,3,0,1,2,0,0,1,0,3",  # line 5: before 1900
    )

    response = post(client, importer, body, "text/csv")

    assert response.status_code == 422, response.text
    rejected = response.json()["rejected_rows"]
    assert [(row["row"], row["field"]) for row in rejected] == [
        (3, "measured_at"),
        (4, "measured_at"),
        (5, "measured_at"),
    ]
    assert all("from 1900-01-01T00:00:00Z to now plus 5 minutes" in row["message"] for row in rejected)
    assert stored(app, clinic) == 0
