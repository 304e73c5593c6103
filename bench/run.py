"""``make bench``: the product side by side with a bare reference app, in one run on one machine.

Each scenario alternates the reference and the product under the same bounded load (32 keep-alive connections on
loopback), for several rounds, and reports medians. Ratios are the point: absolute numbers drift on a shared machine.
Results are printed as a table and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bench.load import LoadResult, Request, http_request, run_load
from bench.servers import BARE, PRODUCT, ROOT, server

console = Console(stderr=True)
cli = typer.Typer(add_completion=False)
PEPPER = "bench-pepper-not-secret"
PHQ9 = {"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3}


@dataclass
class Row:
    scenario: str
    database: str
    metric: str
    product: float
    reference: float | None = None
    unit: str = ""
    target: str = ""
    rounds: list[dict[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        assert self.reference is not None
        return self.product / self.reference


@dataclass
class Plan:
    rounds: int
    seconds: float
    warmup: float
    connections: int


def _databases() -> list[tuple[str, str]]:
    found = [("sqlite", "sqlite")]
    if os.environ.get("TEST_POSTGRES_URL"):
        found.append(("postgresql", os.environ["TEST_POSTGRES_URL"]))
    return found


def _fresh_database(kind: str, server_url: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"co_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def _prepare_product(database_url: str) -> tuple[str, str]:
    """Migrate, then create a clinic, a clinician key and a patient the way an operator would."""
    import app.models  # noqa: F401
    from app.auth import service as auth
    from app.auth.permissions import Role
    from app.core.config import Settings
    from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
    from app.core.migrations import upgrade_to_head
    from app.patients import service as patients
    from app.patients.schemas import PatientCreate

    upgrade_to_head(database_url)
    engine = create_db_engine(Settings(database_url=database_url, api_key_pepper=SecretStr(PEPPER)))
    try:
        for session in transaction(make_sessionmaker(writer(engine))):
            clinic = auth.get_or_create_clinic(session, name="Bench Clinic")
            key = auth.issue_api_key(session, clinic=clinic, role=Role.CLINICIAN, pepper=PEPPER).key
            patient = patients.create(session, clinic_id=clinic.id, data=PatientCreate())
            patient_id = str(patient.id)
    finally:
        engine.dispose()
    return key, patient_id


def repeat(request: bytes) -> Request:
    """The same request every time."""
    return lambda _index: request


def _measure(port: int, build: Request, plan: Plan) -> LoadResult:
    if plan.warmup:
        run_load(port, build, connections=plan.connections, seconds=plan.warmup)
    return run_load(port, build, connections=plan.connections, seconds=plan.seconds)


def ingest(plan: Plan, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    measured_at = datetime(2026, 11, 1, 9, tzinfo=UTC).isoformat()
    body = json.dumps({"instrument": "phq9", "measured_at": measured_at, "items": PHQ9}).encode()
    for kind, server_url in _databases():
        database_url = _fresh_database(kind, server_url, workdir)
        key, patient_id = _prepare_product(database_url)
        env = {
            "DATABASE_URL": database_url,
            "API_KEY_PEPPER": PEPPER,
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
        }
        path = f"/v1/patients/{patient_id}/measurements"
        product_request = http_request("POST", path, body, {"Authorization": f"Bearer {key}"})
        bare_request = http_request("POST", f"/patients/{patient_id}/measurements", body)
        results: dict[str, list[LoadResult]] = {"product": [], "reference": []}
        with server(BARE, env) as (bare_port, _), server(PRODUCT, env) as (product_port, _):
            for _ in range(plan.rounds):
                results["reference"].append(_measure(bare_port, repeat(bare_request), plan))
                results["product"].append(_measure(product_port, repeat(product_request), plan))
        for result in results["product"] + results["reference"]:
            if result.errors:
                raise RuntimeError(f"ingest on {kind}: {result.errors} error responses")
        metrics: list[tuple[str, Callable[[LoadResult], float], str, str]] = [
            ("req/s", lambda r: r.rps, "req/s", "≥ 0.60× reference"),
            ("p50", lambda r: r.p50, "ms", ""),
            ("p99", lambda r: r.p99, "ms", "≤ 1.5× reference"),
        ]
        for metric, pick, unit, target in metrics:
            rows.append(
                Row(
                    scenario="ingest POST /v1/patients/{id}/measurements",
                    database=kind,
                    metric=metric,
                    product=statistics.median(pick(r) for r in results["product"]),
                    reference=statistics.median(pick(r) for r in results["reference"]),
                    unit=unit,
                    target=target,
                    rounds=[
                        {"product": pick(p), "reference": pick(r)}
                        for p, r in zip(results["product"], results["reference"], strict=True)
                    ],
                )
            )
    return rows


def _print(rows: list[Row]) -> None:
    table = Table(title="Benchmark (medians; ratio = product ÷ reference, same run, same machine)")
    for column in ("scenario", "db", "metric", "product", "reference", "ratio", "target"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.scenario,
            row.database,
            row.metric,
            f"{row.product:,.1f} {row.unit}",
            f"{row.reference:,.1f} {row.unit}" if row.reference is not None else "",
            f"{row.ratio:.2f}" if row.ratio is not None else "",
            row.target,
        )
    Console().print(table)


@cli.command()
def main(
    smoke: Annotated[bool, typer.Option(help="Seconds, tiny sizes: proves the benchmark still runs (CI).")] = False,
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    seconds: Annotated[float, typer.Option(min=0.5)] = 10.0,
    connections: Annotated[int, typer.Option(min=1)] = 32,
    output: Annotated[Path, typer.Option()] = ROOT / "bench" / "results" / "latest.json",
) -> None:
    """Run every scenario and print the table; write the JSON next to it."""
    plan = Plan(rounds=1, seconds=1.0, warmup=0.0, connections=4) if smoke else Plan(rounds, seconds, 2.0, connections)
    with tempfile.TemporaryDirectory() as workdir:
        rows = ingest(plan, Path(workdir))
    _print(rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "measured_at": datetime.now(UTC).isoformat(),
        "plan": asdict(plan),
        "smoke": smoke,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
    }
    output.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"Wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    cli()
