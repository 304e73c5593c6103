"""Analysis: lagged effects (MixedLM) on a generated cohort of N × T, stored through the bulk-import path, timed
in process (the route only adds one JSON body)."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import SecretStr

from bench.common import PEPPER, Plan, Row, fresh_database, prepare_product

QUESTION = {"outcome": "phq9.total", "predictors": ["fcs_from_others.total", "scs_sf.total"], "lag": 1}


def run(plan: Plan, workdir: Path) -> list[Row]:
    from app.core.config import Settings
    from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
    from app.instruments.registry import load_registry
    from app.research import imports, service, synthetic
    from app.research.generator import CohortConfig, generate_latent
    from app.research.schemas import LaggedEffectsRequest

    patients, weeks = (20, 12) if plan.smoke else (1000, 24)
    product = prepare_product(fresh_database("sqlite", "sqlite", workdir))
    settings = Settings(database_url=product.database_url, api_key_pepper=SecretStr(PEPPER))
    registry = load_registry(settings.scales_dir)
    engine = create_db_engine(settings)
    request = LaggedEffectsRequest.model_validate(QUESTION)
    timings: list[tuple[float, float | None]] = []
    try:
        latent = generate_latent(CohortConfig(patients=patients, weeks=weeks), seed=7)
        records = synthetic.raw_records(synthetic.measurement_records(latent, registry, seed=7))
        for db in transaction(make_sessionmaker(writer(engine))):
            imports.import_records(db, registry, clinic_id=product.clinic_id, records=records, create_patients=True)
        for _ in range(plan.rounds):
            for db in transaction(make_sessionmaker(engine)):
                started = time.perf_counter()
                service.lagged_effects(db, registry, clinic_id=product.clinic_id, request=request)
                timings.append((time.perf_counter() - started, None))
    finally:
        engine.dispose()
    from bench.common import compare

    return [
        compare(
            f"analysis lagged effects N={patients} × T={weeks}", "sqlite", "seconds", timings, unit="s", target="< 5 s"
        )
    ]
