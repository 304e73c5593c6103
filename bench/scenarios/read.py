"""Read: trajectory and measurement-list p99 with the table at its full size, beside the bare app's latest-50 read.

Requests cycle over 50 patients that each have 100 stored measurements (about two years of weekly scores).
"""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, select

from bench.common import Plan, Product, Row, compare, measure
from bench.load import LoadResult, http_request
from bench.servers import BARE, PRODUCT, server


def _patients(product: Product) -> list[str]:
    from app.measurements.models import Measurement

    engine = create_engine(product.database_url)
    try:
        with engine.connect() as connection:
            query = (
                select(Measurement.patient_id)
                .where(Measurement.patient_id != uuid.UUID(product.patient_id))
                .distinct()
                .limit(50)
            )
            return [str(found) for found in connection.scalars(query)]
    finally:
        engine.dispose()


def run(plan: Plan, product: Product, kind: str, stored: int) -> list[Row]:
    patients = _patients(product)
    headers = product.bearer("clinician")
    routes = {
        "trajectory": lambda i: http_request(
            "GET", f"/v1/patients/{patients[i % len(patients)]}/trajectory?instrument=phq9&score=total", b"", headers
        ),
        "measurement list": lambda i: http_request(
            "GET", f"/v1/patients/{patients[i % len(patients)]}/measurements", b"", headers
        ),
    }
    bare = lambda i: http_request("GET", f"/patients/{patients[i % len(patients)]}/measurements")  # noqa: E731
    results: dict[str, list[tuple[LoadResult, LoadResult]]] = {name: [] for name in routes}
    with server(BARE, product.env) as (bare_port, _), server(PRODUCT, product.env) as (product_port, _):
        for _ in range(plan.rounds):
            for name, build in routes.items():
                reference = measure(bare_port, bare, plan)
                results[name].append((measure(product_port, build, plan), reference))
    rows: list[Row] = []
    for name, pairs in results.items():
        scenario = f"read {name} ({stored:,} stored)"
        rows.append(compare(scenario, kind, "req/s", [(p.rps, r.rps) for p, r in pairs], unit="req/s"))
        rows.append(
            compare(scenario, kind, "p99", [(p.p99, r.p99) for p, r in pairs], unit="ms", target="reported (vs read50)")
        )
    return rows
