"""Bulk: FHIR ``batch`` Bundles of QuestionnaireResponses to our PHQ-9, and the CSV bulk import; responses/s.

Every request carries new measurement times, so nothing is a duplicate of an earlier request. One request is checked
before the load: every entry of the batch must come back ``201`` (a batch answers 200 even when entries fail).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import PHQ9, Plan, Product, Row, compare, databases, fresh_database, measure, prepare_product
from bench.load import Request, http_request
from bench.servers import PRODUCT, server

LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
OUR_PHQ9 = "urn:compassion-outcomes:questionnaire:phq9|1.0.0"
START = datetime(2020, 1, 1, tzinfo=UTC)
IMPORT_PATIENTS = 100
TARGET = "≥ 2,000 responses/s"


def _when(request: int, entry: int, size: int) -> str:
    return (START + timedelta(minutes=request * size + entry)).isoformat()


def bundle(patient_id: str, request: int, *, size: int) -> bytes:
    entries: list[dict[str, Any]] = [
        {
            "resource": {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": OUR_PHQ9,
                "status": "completed",
                "subject": {"reference": f"Patient/{patient_id}"},
                "authored": _when(request, entry, size),
                "item": [
                    {"linkId": link, "answer": [{"valueCoding": {"system": "http://loinc.org", "code": LA[value]}}]}
                    for link, value in PHQ9.items()
                ],
            },
            "request": {"method": "POST", "url": "QuestionnaireResponse"},
        }
        for entry in range(size)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()


def import_csv(request: int, *, size: int) -> bytes:
    header = ["external_id", "instrument", "measured_at", "session_number", *(f"item_{n}" for n in range(1, 10))]
    lines = [",".join(header)]
    answers = ",".join(str(value) for value in PHQ9.values())
    for entry in range(size):
        lines.append(f"BENCH-{entry % IMPORT_PATIENTS},phq9,{_when(request, entry, size)},,{answers}")
    return ("\n".join(lines) + "\n").encode()


def _first_import(port: int, product: Product, body: bytes, size: int) -> None:
    """One import alone, before the load: it creates the import's patients (concurrent first imports would race to
    create the same external ids, and one would rightly be refused)."""
    headers = {**product.bearer("integration"), "Content-Type": "text/csv"}
    url = f"http://127.0.0.1:{port}/v1/research/imports?create_patients=true"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (loopback http only)
        report = json.load(response)
    if report["imported"] != size:
        raise RuntimeError(f"import stored {report['imported']} of {size} rows")


def _check_batch(port: int, product: Product, body: bytes, size: int) -> None:
    headers = {**product.bearer("integration"), "Content-Type": "application/fhir+json"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/fhir", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (loopback http only)
        answer = json.load(response)
    statuses = [entry["response"]["status"] for entry in answer["entry"]]
    if len(statuses) != size or any(not status.startswith("201") for status in statuses):
        raise RuntimeError(f"batch entries not all created: {sorted(set(statuses))}")


def numbered(
    counter: Iterator[int], method: str, path: str, body: Callable[[int], bytes], headers: dict[str, str]
) -> Request:
    """Each request with the next number from ``counter`` (shared, so no two bodies repeat a time)."""
    return lambda _index: http_request(method, path, body(next(counter)), headers)


def run(plan: Plan, workdir: Path) -> list[Row]:
    size = 20 if plan.smoke else 1000
    connections = 2
    rows: list[Row] = []
    for kind, server_url in databases(plan):
        product = prepare_product(fresh_database(kind, server_url, workdir))
        fhir_headers = {**product.bearer("integration"), "Content-Type": "application/fhir+json"}
        import_headers = {**product.bearer("integration"), "Content-Type": "text/csv"}
        # Request numbers keep every body's times distinct across warm-up, rounds and both routes.
        counter = iter(range(1, 1_000_000))
        batches: list[tuple[float, float | None]] = []
        imported: list[tuple[float, float | None]] = []
        with server(PRODUCT, product.env) as (port, _):
            _check_batch(port, product, bundle(product.patient_id, 0, size=size), size)
            _first_import(port, product, import_csv(0, size=size), size)
            path = "/v1/research/imports?create_patients=true"
            for _ in range(plan.rounds):
                result = measure(
                    port,
                    numbered(counter, "POST", "/fhir", partial(bundle, product.patient_id, size=size), fhir_headers),
                    plan,
                    connections=connections,
                )
                batches.append((result.rps * size, None))
                result = measure(
                    port,
                    numbered(counter, "POST", path, partial(import_csv, size=size), import_headers),
                    plan,
                    connections=connections,
                )
                imported.append((result.rps * size, None))
        rows.append(compare(f"bulk FHIR batch of {size} QRs", kind, "responses/s", batches, unit="/s", target=TARGET))
        rows.append(compare(f"bulk import CSV of {size} rows", kind, "responses/s", imported, unit="/s", target=TARGET))
    return rows
