"""The reference: the same FastAPI, Pydantic, SQLAlchemy and database, and nothing else.

One endpoint validates a 9-item body and inserts one row: the product's ingest is compared with it. For reads and
exports it reads the product's own ``measurement`` table (same rows, same database, same indexes) with SQLAlchemy
Core and nothing else: no auth, no scoping beyond the clinic, no pseudonyms, no audit.
Run: ``DATABASE_URL=... uvicorn bench.bare_app:app``.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Uuid, insert, select
from starlette.background import BackgroundTask

from app.core.config import Settings
from app.core.db import create_db_engine

Answer = Annotated[StrictInt, Field(ge=0, le=3)]

metadata = MetaData()
bench_row = Table(
    "bench_measurement",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("patient_id", String(36), nullable=False),
    Column("instrument_id", String(50), nullable=False),
    Column("total", Integer, nullable=False),
    Column("items", JSON, nullable=False),
    Column("measured_at", DateTime(timezone=True), nullable=False),
)
product_rows = Table(
    "measurement",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("clinic_id", Uuid),
    Column("patient_id", Uuid),
    Column("instrument_id", String(50)),
    Column("measured_at", DateTime(timezone=True)),
    Column("scores", JSON),
    Column("is_current", Boolean),
)
"""The product's table, read as it is (this app never creates it)."""
COLUMNS = ("patient_id", "instrument_id", "measured_at", "total")
BATCH = 5_000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: str
    measured_at: datetime
    items: dict[str, Answer] = Field(min_length=9, max_length=9)


engine = create_db_engine(Settings(database_url=os.environ["DATABASE_URL"]))
metadata.create_all(engine)
app = FastAPI()


@app.post("/patients/{patient_id}/measurements", status_code=201)
def ingest(patient_id: str, body: Body) -> dict[str, str]:
    row_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            insert(bench_row).values(
                id=row_id,
                patient_id=patient_id,
                instrument_id=body.instrument,
                total=sum(body.items.values()),
                items=body.items,
                measured_at=body.measured_at.astimezone(UTC),
            )
        )
    return {"id": str(row_id)}


@app.get("/livez")
def livez() -> dict[str, str]:
    return {"status": "pass"}


@app.get("/patients/{patient_id}/measurements")
def recent(patient_id: uuid.UUID) -> list[dict[str, object]]:
    """The patient's latest 50 measurements, as stored."""
    query = (
        select(product_rows.c.id, product_rows.c.instrument_id, product_rows.c.measured_at, product_rows.c.scores)
        .where(product_rows.c.patient_id == patient_id)
        .order_by(product_rows.c.measured_at.desc())
        .limit(50)
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def _rows(clinic_id: uuid.UUID) -> Iterator[list[tuple[object, ...]]]:
    c = product_rows.c
    query = (
        select(c.patient_id, c.instrument_id, c.measured_at, c.scores)
        .where(c.clinic_id == clinic_id, c.is_current.is_(True))
        .order_by(c.patient_id, c.measured_at, c.id)
        .execution_options(yield_per=BATCH)
    )
    with engine.connect() as connection:
        for partition in connection.execute(query).partitions():
            yield [(p, i, m.isoformat(), s["total"]["value"]) for p, i, m, s in partition]


def _csv(clinic_id: uuid.UUID) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for batch in _rows(clinic_id):
        writer.writerows(batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@app.get("/export", response_model=None)
def export(clinic_id: uuid.UUID, format: str = "csv") -> StreamingResponse | FileResponse:
    """Every current measurement of the clinic, one row each: streamed CSV, or Parquet written batch by batch."""
    if format == "csv":
        return StreamingResponse(_csv(clinic_id), media_type="text/csv")
    schema = pa.schema([(name, pa.string()) for name in COLUMNS[:3]] + [("total", pa.float64())])
    handle, path = tempfile.mkstemp(suffix=".parquet")
    os.close(handle)
    with pq.ParquetWriter(path, schema) as writer:
        for batch in _rows(clinic_id):
            columns = list(zip(*batch, strict=True))
            writer.write_table(
                pa.table(
                    [
                        pa.array([str(v) for v in columns[0]]),
                        pa.array(columns[1]),
                        pa.array(columns[2]),
                        pa.array(columns[3], pa.float64()),
                    ],
                    schema=schema,
                )
            )
    return FileResponse(path, media_type="application/vnd.apache.parquet", background=BackgroundTask(os.unlink, path))
