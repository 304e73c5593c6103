"""What every scenario shares: the plan, the table row, fresh databases, a prepared product and the servers' env."""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from bench.load import LoadResult, Request, run_load

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
    smoke: bool = False


@dataclass(frozen=True)
class Product:
    """A migrated database with one clinic, a key per staff role and one patient."""

    database_url: str
    clinic_id: uuid.UUID
    keys: dict[str, str]
    patient_id: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "API_KEY_PEPPER": PEPPER,
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
        }

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def databases(plan: Plan | None = None) -> list[tuple[str, str]]:
    """SQLite, and PostgreSQL when ``TEST_POSTGRES_URL`` is set; a smoke run stays on SQLite (read and export take
    the last database, so a smoke run with PostgreSQL still exercises both)."""
    found = [("sqlite", "sqlite")]
    if os.environ.get("TEST_POSTGRES_URL") and not (plan and plan.smoke):
        found.append(("postgresql", os.environ["TEST_POSTGRES_URL"]))
    return found


def fresh_database(kind: str, server_url: str, workdir: Path) -> str:
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


def prepare_product(database_url: str) -> Product:
    """Migrate, then create a clinic, a key per staff role and a patient the way an operator would."""
    import app.models  # noqa: F401
    from app.auth import service as auth
    from app.auth.permissions import Role
    from app.core.config import Settings
    from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
    from app.core.migrations import upgrade_to_head
    from app.patients import service as patients
    from app.patients.schemas import PatientCreate
    from app.research import projects as research_projects
    from app.research.schemas import ConsentModel, ProjectCreate

    upgrade_to_head(database_url)
    engine = create_db_engine(Settings(database_url=database_url, api_key_pepper=SecretStr(PEPPER)))
    try:
        for db in transaction(make_sessionmaker(writer(engine))):
            clinic = auth.get_or_create_clinic(db, name="Bench Clinic")
            keys = {
                role.value: auth.issue_api_key(db, clinic=clinic, role=role, pepper=PEPPER).key
                for role in (Role.CLINICIAN, Role.INTEGRATION)
            }
            # An opt-out project without objections: its exports hold every patient, as the bare app's do.
            project = research_projects.create(
                db,
                clinic_id=clinic.id,
                body=ProjectCreate(
                    name="bench", purpose="Benchmark.", ethics_reference="none", consent_model=ConsentModel.OPT_OUT
                ),
                created_by_key_id=None,
            )
            keys[Role.RESEARCHER.value] = auth.issue_api_key(
                db, clinic=clinic, role=Role.RESEARCHER, pepper=PEPPER, research_project_id=project.id
            ).key
            patient = patients.create(db, clinic_id=clinic.id, data=PatientCreate())
            product = Product(database_url, clinic.id, keys, str(patient.id))
    finally:
        engine.dispose()
    return product


def repeat(request: bytes) -> Request:
    """The same request every time."""
    return lambda _index: request


def measure(port: int, build: Request, plan: Plan, *, connections: int | None = None) -> LoadResult:
    """A warm-up (results dropped), then the measured run; any error response fails the benchmark."""
    conns = connections or plan.connections
    if plan.warmup:
        run_load(port, build, connections=conns, seconds=plan.warmup)
    result = run_load(port, build, connections=conns, seconds=plan.seconds)
    if result.errors:
        raise RuntimeError(f"{result.errors} error responses on port {port}")
    return result


def compare(
    scenario: str,
    database: str,
    metric: str,
    pairs: list[tuple[float, float | None]],
    *,
    unit: str,
    target: str = "",
) -> Row:
    """A row from per-round (product, reference) values: medians of each side."""
    references = [r for _, r in pairs if r is not None]
    return Row(
        scenario=scenario,
        database=database,
        metric=metric,
        product=statistics.median(p for p, _ in pairs),
        reference=statistics.median(references) if references else None,
        unit=unit,
        target=target,
        rounds=[{"product": p, **({"reference": r} if r is not None else {})} for p, r in pairs],
    )


Pick = Callable[[LoadResult], float]
