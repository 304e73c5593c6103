"""The reference: the same FastAPI, Pydantic, SQLAlchemy and database, and nothing else.

One endpoint validates a 9-item body and inserts one row. The product's ingest is compared with this.
Run: ``DATABASE_URL=... uvicorn bench.bare_app:app``.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Uuid, insert

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
