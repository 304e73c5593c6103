"""Research commands: ``python -m app research --help``.

Registered in ``app/cli.py`` with ``cli.add_typer(research_cli, name="research")``. Results go to stdout (JSON),
progress bars and messages to stderr, as for the other commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Clinic
from app.core.config import get_settings
from app.core.db import create_db_engine, make_sessionmaker, utcnow, writer
from app.core.errors import DomainError
from app.instruments.registry import InstrumentRegistry, load_registry
from app.research import analysis, cohort_clinic, imports, projects, service, synthetic
from app.research.generator import CohortConfig, generate_latent
from app.research.schemas import ImportReport, LaggedEffectsRequest

research_cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Research: generate, import, analyse.")
stderr = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )


@contextmanager
def _session(*, write: bool = True) -> Iterator[tuple[Session, InstrumentRegistry]]:
    """One transaction on DATABASE_URL: committed if the block succeeds, rolled back otherwise."""
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        factory = make_sessionmaker(writer(engine) if write else engine)
        with factory() as db, db.begin():
            yield db, load_registry(settings.scales_dir)
    finally:
        engine.dispose()


def _clinic(db: Session, name: str) -> Clinic:
    clinic = db.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        stderr.print(f"No clinic named {name!r}.")
        raise typer.Exit(code=2)
    return clinic


def _fail(error: DomainError) -> typer.Exit:
    stderr.print(f"[red]{error.detail}[/red]", soft_wrap=True)
    for entry in error.extra.get("rejected_rows", [])[:200]:
        stderr.print(f"  line {entry['row']}: {entry['field']}: {entry['message']}", soft_wrap=True, markup=False)
    for field_error in error.errors if "rejected_rows" not in error.extra else []:
        stderr.print(f"  {field_error.field}: {field_error.message}", soft_wrap=True, markup=False)
    return typer.Exit(code=1)


def _import_with_progress() -> tuple[Progress, imports.Progress]:
    bar = _progress()
    tasks: dict[str, TaskID] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase.capitalize(), total=total)
        bar.update(tasks[phase], completed=done, total=total)

    return bar, report


@research_cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .ndjson file of measurements.")],
    clinic: Annotated[str, typer.Option(help="Name of the clinic the patients belong to.")],
    create_patients: Annotated[bool, typer.Option(help="Create patients for unknown external ids.")] = False,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson; by default from the file's suffix.")
    ] = None,
) -> None:
    """Import measurements (validated and scored like single posts); one rejected row rejects the whole file."""
    chosen = file_format or ("csv" if file.suffix.lower() == ".csv" else "ndjson")
    if chosen not in ("csv", "ndjson"):
        stderr.print("--format must be csv or ndjson")
        raise typer.Exit(code=2)
    import_format: Literal["csv", "ndjson"] = "csv" if chosen == "csv" else "ndjson"
    bar, report = _import_with_progress()
    try:
        with _session() as (db, registry), bar:
            clinic_row = _clinic(db, clinic)
            result = imports.import_file(
                db,
                registry,
                clinic_id=clinic_row.id,
                content=file.read_bytes(),
                import_format=import_format,
                create_patients=create_patients,
                progress=report,
            )
    except DomainError as error:
        raise _fail(error) from None
    _print_import(result)


def _print_import(result: ImportReport) -> None:
    stderr.print(
        f"Imported {result.imported} measurement(s); {result.patients_created} patient(s) and "
        f"{result.sessions_created} session(s) created."
    )
    typer.echo(result.model_dump_json())


@research_cli.command("generate")
def generate_command(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and options give the same cohort.")] = 1,
    patients: Annotated[int, typer.Option(min=1, help="N.")] = CohortConfig.patients,
    weeks: Annotated[int, typer.Option(min=1, help="T (weeks 0…T−1).")] = CohortConfig.weeks,
    rho_d: Annotated[float, typer.Option(help="ρ_D, autoregression of depression.")] = CohortConfig.rho_d,
    rho_f: Annotated[float, typer.Option(help="ρ_F.")] = CohortConfig.rho_f,
    rho_s: Annotated[float, typer.Option(help="ρ_S.")] = CohortConfig.rho_s,
    gamma_fd: Annotated[float, typer.Option(help="γ_FD: F(t−1) → D(t), the mechanism.")] = CohortConfig.gamma_fd,
    gamma_ds: Annotated[float, typer.Option(help="γ_DS: D(t−1) → S(t).")] = CohortConfig.gamma_ds,
    gamma_sd: Annotated[float, typer.Option(help="γ_SD: S(t−1) → D(t).")] = CohortConfig.gamma_sd,
    delta_df: Annotated[float, typer.Option(help="δ_DF: D(t−1) → F(t).")] = CohortConfig.delta_df,
    tau: Annotated[float, typer.Option(help="SD of person-specific γ_FD.")] = CohortConfig.tau,
    measurement_error: Annotated[float, typer.Option(help="SD of measurement error.")] = CohortConfig.measurement_error,
    missing: Annotated[float, typer.Option(help="MCAR probability of a missed week.")] = CohortConfig.missing,
    start: Annotated[
        datetime | None,
        typer.Option(help="Week 0, read as UTC (default: a Monday 09:00, so that the last week is last week)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write import records here (.csv or .ndjson).")] = None,
    latent: Annotated[Path | None, typer.Option(help="Write the latent panel (patient, week, D, F, S) as CSV.")] = None,
    clinic: Annotated[
        str | None,
        typer.Option(
            help="Store the cohort in this clinic: created if new, marked synthetic. A real clinic (not made by the "
            "generator) or one with patients the generator did not make is refused."
        ),
    ] = None,
) -> None:
    """Generate a synthetic cohort with known effects (change-analytics §5); write it to files and/or the service."""
    if output is None and latent is None and clinic is None:
        stderr.print("Give --output, --latent and/or --clinic.")
        raise typer.Exit(code=2)
    try:
        config = CohortConfig(
            patients=patients,
            weeks=weeks,
            rho_d=rho_d,
            rho_f=rho_f,
            rho_s=rho_s,
            gamma_fd=gamma_fd,
            gamma_ds=gamma_ds,
            gamma_sd=gamma_sd,
            delta_df=delta_df,
            tau=tau,
            measurement_error=measurement_error,
            missing=missing,
        )
    except ValueError as error:
        stderr.print(str(error))
        raise typer.Exit(code=2) from None
    panel = generate_latent(config, seed=seed)
    origin = (
        synthetic.start_ending_before(utcnow(), weeks) if start is None else start.replace(tzinfo=start.tzinfo or UTC)
    )
    stderr.print(f"Generated {len(panel)} patient-weeks; known effects: {config.known_effects()}")
    if latent is not None:
        panel.to_csv(latent, index=False)
    registry = load_registry(get_settings().scales_dir)
    if output is not None:
        fmt: Literal["csv", "ndjson"] = "csv" if output.suffix.lower() == ".csv" else "ndjson"
        with output.open("w", encoding="utf-8", newline="") as out:
            count = imports.write_records(
                synthetic.measurement_records(panel, registry, seed=seed, start=origin),
                out,
                import_format=fmt,
                items=synthetic.item_columns(registry),
            )
        stderr.print(f"Wrote {count} measurement records to {output}.")
    if clinic is not None:
        records = synthetic.raw_records(synthetic.measurement_records(panel, registry, seed=seed, start=origin))
        bar, report = _import_with_progress()
        try:
            with _session() as (db, db_registry), bar:
                clinic_row = cohort_clinic.clinic_for_cohort(db, name=clinic)
                result = imports.import_records(
                    db,
                    db_registry,
                    clinic_id=clinic_row.id,
                    records=records,
                    create_patients=True,
                    progress=report,
                )
        except DomainError as error:
            raise _fail(error) from None
        _print_import(result)


@research_cli.command("lagged-effects")
def lagged_effects_command(
    outcome: Annotated[str, typer.Option(help="e.g. phq9.total (or a column of --panel).")],
    predictor: Annotated[list[str], typer.Option(help="Repeat for each predictor, e.g. fcs_from_others.total.")],
    lag: Annotated[int, typer.Option(min=1, max=12, help="Lag in weeks.")] = 1,
    method: Annotated[str, typer.Option(help="mixedlm or within.")] = "mixedlm",
    clinic: Annotated[str | None, typer.Option(help="Analyse this clinic's stored measurements.")] = None,
    panel: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Or a CSV panel: patient, week, variables.")
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="With --clinic: only this research project's consenting patients (else every patient)."),
    ] = None,
) -> None:
    """Within-person lagged effects (change-analytics §4.2) with the naive estimates beside them; JSON on stdout.

    Run by the operator on the database itself, so every patient of the clinic unless ``--project`` names one; a
    researcher's analyses go through the API, which is always of the key's project."""
    if (clinic is None) == (panel is None):
        stderr.print("Give exactly one of --clinic and --panel.")
        raise typer.Exit(code=2)
    if project is not None and clinic is None:
        stderr.print("--project goes with --clinic.")
        raise typer.Exit(code=2)
    if method not in ("mixedlm", "within"):
        stderr.print("--method must be mixedlm or within")
        raise typer.Exit(code=2)
    bar = _progress()
    task = bar.add_task("Analysis", total=len(analysis.STEPS))

    def report(step: str) -> None:
        bar.update(task, description=step.capitalize(), completed=analysis.STEPS.index(step))

    try:
        with bar:
            if panel is not None:
                frame = pd.read_csv(panel)
                result = service.to_response(
                    analysis.fit_lagged_effects(
                        frame,
                        outcome=outcome,
                        predictors=predictor,
                        lag=lag,
                        method="within" if method == "within" else "mixedlm",
                        progress=report,
                    )
                )
            else:
                assert clinic is not None
                request = LaggedEffectsRequest.model_validate(
                    {"outcome": outcome, "predictors": predictor, "lag": lag, "method": method}
                )
                with _session(write=False) as (db, registry):
                    clinic_row = _clinic(db, clinic)
                    patients = (
                        projects.consenting_patient_ids(projects.by_name(db, clinic_id=clinic_row.id, name=project))
                        if project is not None
                        else None
                    )
                    result = service.lagged_effects(
                        db, registry, clinic_id=clinic_row.id, request=request, progress=report, patients=patients
                    )
            bar.update(task, description="Done", completed=len(analysis.STEPS))
    except (DomainError, analysis.InsufficientData, ValueError, KeyError) as error:
        message = error.detail if isinstance(error, DomainError) else str(error)
        stderr.print(f"[red]{message}[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from None
    sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
