"""Store many measurements fast, straight into the ``measurement`` table (not through the API).

One PHQ-9 is scored and stored through ``app.clinical.recording`` (as every path in stores one); its row is the
template that is copied with new ids, patients and times, so every stored score is valid JSON the product itself
produced.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select

from bench.common import PEPPER, PHQ9, Product

CHUNK = 20_000
PER_PATIENT = 100
"""Each filler patient has 100 measurements, about two years of weekly PHQ-9 and GAD-7."""
START = datetime(2022, 1, 3, 9, tzinfo=UTC)


def seed(product: Product, total: int) -> int:
    """Grow the clinic to ``total`` stored measurements; returns how many were added."""
    import app.models  # noqa: F401
    from app.clinical import recording
    from app.core.config import Settings
    from app.core.db import create_db_engine, make_sessionmaker, table_of, transaction, writer
    from app.instruments.registry import load_registry
    from app.measurements import service as measurements
    from app.measurements.models import Measurement
    from app.measurements.schemas import Source
    from app.patients.models import Patient

    settings = Settings(database_url=product.database_url, api_key_pepper=SecretStr(PEPPER))
    engine = create_db_engine(settings)
    table = table_of(Measurement)
    patient_table = table_of(Patient)
    try:
        for db in transaction(make_sessionmaker(writer(engine))):
            have = db.scalar(select(func.count()).select_from(table)) or 0
            template_row = db.execute(select(table).limit(1)).mappings().first()
            if template_row is None:
                new = measurements.new_measurement(
                    load_registry(settings.scales_dir),
                    "phq9",
                    clinic_id=product.clinic_id,
                    patient_id=uuid.UUID(product.patient_id),
                    items=PHQ9,
                    measured_at=START,
                    source=Source("api"),
                )
                created = recording.record_one(db, new)
                template_row = db.execute(select(table).where(table.c.id == created["id"])).mappings().one()
                have += 1
        assert template_row is not None
        template: dict[str, Any] = dict(template_row)
        added = 0
        with engine.begin() as connection:
            while have + added < total:
                count = min(CHUNK, total - have - added)
                patients = [
                    {"id": uuid.uuid4(), "clinic_id": product.clinic_id, "created_at": START}
                    for _ in range(-(-count // PER_PATIENT))
                ]
                connection.execute(insert(patient_table), patients)
                rows = []
                for offset in range(count):
                    row_id = uuid.uuid4()
                    rows.append(
                        {
                            **template,
                            "id": row_id,
                            "measurement_id": row_id,
                            "patient_id": patients[offset // PER_PATIENT]["id"],
                            "measured_at": START + timedelta(days=7 * (offset % PER_PATIENT)),
                        }
                    )
                connection.execute(insert(table), rows)
                added += count
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # After a bulk load, as an operator would (or autovacuum, minutes later): the planner needs row counts.
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return added
