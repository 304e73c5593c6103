"""Administrative commands: ``python -m app --help``.

Only a command's result goes to stdout (``create-api-key`` prints the key and nothing else); messages go to stderr.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (every table must be known before any is used)
from app.auth import service as auth
from app.auth.permissions import STAFF_ROLES, Role
from app.core.config import get_settings
from app.core.db import create_db_engine, make_sessionmaker, transaction, utcnow, writer
from app.core.errors import NotFound
from app.core.logging import configure_logging
from app.core.migrations import upgrade_to_head
from app.idempotency import service as idempotency
from app.instruments.registry import load_registry, record_versions
from app.jobs.worker import run_worker
from app.research import projects as research_projects
from app.research.cli import research_cli

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Compassion Outcomes administration.")
stderr = Console(stderr=True)
cli.add_typer(research_cli, name="research", help="Research: synthetic cohorts, bulk import, lagged effects.")


@cli.command("create-api-key")
def create_api_key(
    clinic: Annotated[str, typer.Option(help="Clinic name; created if it does not exist.")],
    role: Annotated[Role, typer.Option(help="Role of the key.")],
    label: Annotated[str | None, typer.Option(help="A note on what the key is for.")] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Days until the key stops working.")] = None,
    project: Annotated[
        str | None,
        typer.Option(help="For a researcher key: the clinic's research project (by name) its exports are of."),
    ] = None,
) -> None:
    """Create an API key (and the clinic, if new). The key is printed once, on stdout; only its hash is stored."""
    if role not in STAFF_ROLES:
        stderr.print(
            "Patient tokens come from an enrolment code (POST /v1/patients/{id}/enrolments), not this command."
        )
        raise typer.Exit(2)
    if project is not None and role is not Role.RESEARCHER:
        stderr.print("Only a researcher key is issued for a research project.")
        raise typer.Exit(2)
    if project is None and role is Role.RESEARCHER:
        stderr.print("Give --project: a researcher key without a research project cannot export or analyse.")
        raise typer.Exit(2)
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        for db in transaction(make_sessionmaker(writer(engine))):
            clinic_row = auth.get_or_create_clinic(db, name=clinic)
            try:
                project_row = research_projects.by_name(db, clinic_id=clinic_row.id, name=project) if project else None
            except NotFound as missing:
                stderr.print(f"{missing.detail} in clinic {clinic!r} (POST /v1/research/projects makes one).")
                raise typer.Exit(2) from None
            issued = auth.issue_api_key(
                db,
                clinic=clinic_row,
                role=role,
                label=label,
                pepper=settings.api_key_pepper.get_secret_value(),
                expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
                research_project_id=project_row.id if project_row is not None else None,
            )
            key = issued.key
    finally:
        engine.dispose()
    stderr.print(
        f"Created a {role.value} key for clinic {clinic!r}. Store it now: it cannot be shown again.", soft_wrap=True
    )
    typer.echo(key)


@cli.command("migrate")
def migrate() -> None:
    """Apply every database migration (``alembic upgrade head``) to DATABASE_URL."""
    upgrade_to_head(get_settings().database_url)
    stderr.print("Database is at the latest migration.")


@cli.command("record-scale-versions")
def record_scale_versions() -> None:
    """Record each definition's version fingerprint in scales/versions.lock.json (run after bumping a version)."""
    settings = get_settings()
    lock = record_versions(settings.scales_dir, load_registry(settings.scales_dir))
    stderr.print(f"Recorded {sum(len(v) for v in lock.values())} definition versions.")


@cli.command("purge-idempotency-records")
def purge_idempotency_records() -> None:
    """Delete Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS now (a periodic job does it every hour)."""
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        purged = idempotency.purge_all_expired(
            writer(engine), now=utcnow(), ttl=timedelta(hours=settings.idempotency_ttl_hours)
        )
    finally:
        engine.dispose()
    stderr.print(f"Deleted {purged} Idempotency-Key records older than {settings.idempotency_ttl_hours} h.")


@cli.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs this worker runs at once (threads).")] = 4,
    name: Annotated[str | None, typer.Option(help="The worker's name in logs and procrastinate's tables.")] = None,
) -> None:
    """Run background jobs (webhook deliveries and their retries, periodic expiry) on PostgreSQL until stopped
    (SIGINT/SIGTERM let the running jobs finish). Run as many as you like, beside any number of app processes: each
    job runs once. On SQLite the app runs them itself (JOBS_IN_PROCESS)."""
    settings = get_settings()
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        stderr.print("The worker runs on PostgreSQL; on SQLite the app runs its jobs in-process (JOBS_IN_PROCESS).")
        raise typer.Exit(2)
    configure_logging(settings.log_level)
    stderr.print(f"Worker started (concurrency {concurrency}); stop it with Ctrl-C or SIGTERM.")
    run_worker(settings, concurrency=concurrency, name=name)


@cli.command("list-api-keys")
def list_api_keys(clinic: Annotated[str, typer.Option(help="Clinic name.")]) -> None:
    """List a clinic's staff keys (id, prefix, role, label, state); secrets are never shown."""
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        for db in transaction(make_sessionmaker(engine)):
            clinic_row = auth.find_clinic(db, name=clinic)
            for key in auth.list_keys(db, clinic_id=clinic_row.id, limit=10_000, offset=0):
                state = "revoked" if key.revoked_at else "active"
                typer.echo(f"{key.id}\tco_{key.prefix}_…\t{key.role}\t{state}\t{key.label or ''}")
    finally:
        engine.dispose()


@cli.command("revoke-api-key")
def revoke_api_key(
    clinic: Annotated[str, typer.Option(help="Clinic name.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (from list-api-keys).")],
) -> None:
    """Revoke a staff key at once; requests with it then get 401."""
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        for db in transaction(make_sessionmaker(writer(engine))):
            clinic_row = auth.find_clinic(db, name=clinic)
            auth.revoke_key(db, clinic_id=clinic_row.id, key_id=uuid.UUID(key_id))
    finally:
        engine.dispose()
    stderr.print(f"Revoked key {key_id}.")
