"""``make bench``: the product side by side with a bare reference app, in one run on one machine.

Each scenario alternates the reference and the product under the same bounded load (32 keep-alive connections on
loopback), for several rounds, and reports medians. Ratios are the point: absolute numbers drift on a shared machine.
Results are printed as a table and written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bench.common import Plan, Row, databases, fresh_database, prepare_product
from bench.scenarios import analysis, bulk, export, ingest, read
from bench.seed import seed
from bench.servers import ROOT

console = Console(stderr=True)
cli = typer.Typer(add_completion=False)
SCENARIOS = ("ingest", "bulk", "read", "export", "analysis")


def stored(plan: Plan, workdir: Path, wanted: set[str]) -> list[Row]:
    """Export at the small size, grow the same clinic to the large size, then read and export again.

    Runs on one database: PostgreSQL when there is one (as production), else SQLite.
    """
    small, large = (2_000, 5_000) if plan.smoke else (100_000, 1_000_000)
    kind, server_url = databases()[-1]
    product = prepare_product(fresh_database(kind, server_url, workdir))
    rows: list[Row] = []
    # The smoke run exports once (at the larger size) to stay well under a minute.
    for size in (large,) if plan.smoke else (small, large):
        started = datetime.now(UTC)
        seed(product, size)
        console.print(
            f"seeded {size:,} measurements on {kind} in {(datetime.now(UTC) - started).total_seconds():.0f} s"
        )
        if size == large and "read" in wanted:
            rows += read.run(plan, product, kind, size)
        if "export" in wanted:
            rows += export.run(plan, product, kind, size)
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
    Console(width=170).print(table)


@cli.command()
def main(
    smoke: Annotated[bool, typer.Option(help="Seconds, tiny sizes: proves the benchmark still runs (CI).")] = False,
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    seconds: Annotated[float, typer.Option(min=0.5)] = 10.0,
    connections: Annotated[int, typer.Option(min=1)] = 32,
    output: Annotated[Path, typer.Option()] = ROOT / "bench" / "results" / "latest.json",
    only: Annotated[list[str] | None, typer.Option(help=f"Run only these scenarios: {', '.join(SCENARIOS)}.")] = None,
) -> None:
    """Run every scenario and print the table; write the JSON next to it."""
    plan = (
        Plan(rounds=1, seconds=1.0, warmup=0.0, connections=4, smoke=True)
        if smoke
        else Plan(rounds, seconds, 2.0, connections)
    )
    wanted = set(only or SCENARIOS)
    if unknown := wanted - set(SCENARIOS):
        raise typer.BadParameter(f"unknown scenarios: {', '.join(sorted(unknown))}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as workdir:
        if "ingest" in wanted:
            rows += ingest.run(plan, Path(workdir))
        if "bulk" in wanted:
            rows += bulk.run(plan, Path(workdir))
        if wanted & {"read", "export"}:
            rows += stored(plan, Path(workdir), wanted)
        if "analysis" in wanted:
            rows += analysis.run(plan, Path(workdir))
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
