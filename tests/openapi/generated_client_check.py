"""Run by ``test_generated_client.py`` with the tools venv's Python (``.venv-tools``, which has what a generated client
needs: httpx, attrs, python-dateutil): drives the client openapi-python-client generated from ``/openapi.json``
against a live server, writes the export files it downloads into the output directory and prints what it got as JSON.

Arguments: the generated package's directory, the output directory, a new patient's external id. The server's address
and the keys come in the environment (CLIENT_BASE_URL, RESEARCHER_KEY, CLINICIAN_KEY), never on a command line.
This file imports nothing of the app or of the tests: it runs where neither is installed.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def main(package_dir: Path, output: Path, external_id: str) -> dict[str, Any]:
    sys.path.insert(0, str(package_dir.parent))
    package = package_dir.name
    client = importlib.import_module(f"{package}.client")
    models = importlib.import_module(f"{package}.models")
    export = importlib.import_module(f"{package}.api.research.export_v1_research_export_get")
    create_patient = importlib.import_module(f"{package}.api.patients.create_patient_v1_patients_post")
    base_url = os.environ["CLIENT_BASE_URL"]
    researcher = client.AuthenticatedClient(base_url=base_url, token=os.environ["RESEARCHER_KEY"])
    clinician = client.AuthenticatedClient(base_url=base_url, token=os.environ["CLINICIAN_KEY"])

    report: dict[str, Any] = {}
    for export_format in ("parquet", "sav"):
        response = export.sync_detailed(
            client=researcher,
            format_=models.ExportFormat(export_format),
            layout=models.Layout("wide"),
            instruments="phq9",
        )
        (output / f"export.{export_format}").write_bytes(response.content)
        report[export_format] = {
            "status_code": int(response.status_code),
            "content_type": response.headers["content-type"],
            "parsed": type(response.parsed).__name__,
        }

    body = models.PatientCreate.from_dict({"external_id": external_id})
    created = create_patient.sync_detailed(client=clinician, body=body)
    conflict = create_patient.sync_detailed(client=clinician, body=body)
    problem = conflict.parsed
    report["created"] = {"status_code": int(created.status_code), "parsed": type(created.parsed).__name__}
    report["conflict"] = {
        "status_code": int(conflict.status_code),
        "content_type": conflict.headers["content-type"],
        "parsed": type(problem).__name__,
        "type": problem.type_,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": problem.instance,
    }
    return report


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])) + "\n")
