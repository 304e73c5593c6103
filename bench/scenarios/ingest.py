"""Ingest: ``POST /v1/patients/{id}/measurements`` beside the bare app's validate-and-insert, on each database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    PHQ9,
    Pick,
    Plan,
    Row,
    compare,
    databases,
    fresh_database,
    measure,
    prepare_product,
    repeat,
)
from bench.load import LoadResult, http_request
from bench.servers import BARE, PRODUCT, server

SCENARIO = "ingest POST /v1/patients/{id}/measurements"


def run(plan: Plan, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    measured_at = datetime(2026, 11, 1, 9, tzinfo=UTC).isoformat()
    body = json.dumps({"instrument": "phq9", "measured_at": measured_at, "items": PHQ9}).encode()
    for kind, server_url in databases(plan):
        product = prepare_product(fresh_database(kind, server_url, workdir))
        path = f"/v1/patients/{product.patient_id}/measurements"
        product_request = http_request("POST", path, body, product.bearer("clinician"))
        bare_request = http_request("POST", f"/patients/{product.patient_id}/measurements", body)
        results: list[tuple[LoadResult, LoadResult]] = []
        with server(BARE, product.env) as (bare_port, _), server(PRODUCT, product.env) as (product_port, _):
            for _ in range(plan.rounds):
                reference = measure(bare_port, repeat(bare_request), plan)
                results.append((measure(product_port, repeat(product_request), plan), reference))
        metrics: list[tuple[str, Pick, str, str]] = [
            ("req/s", lambda r: r.rps, "req/s", "≥ 0.60× reference"),
            ("p50", lambda r: r.p50, "ms", ""),
            ("p99", lambda r: r.p99, "ms", "≤ 1.5× reference"),
        ]
        for metric, pick, unit, target in metrics:
            pairs: list[tuple[float, float | None]] = [(pick(p), pick(r)) for p, r in results]
            rows.append(compare(SCENARIO, kind, metric, pairs, unit=unit, target=target))
    return rows
