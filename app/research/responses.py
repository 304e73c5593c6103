"""HTTP delivery of an export: CSV and Parquet stream; SPSS and Stata are built whole.

A stream outlives the request's transaction (the request dependency commits before the body is sent), so it reads
through a session of its own from the read pool, opened when the first chunk is pulled and closed with the stream.
pyreadstat writes only to paths, so a ``.sav`` or ``.dta`` goes through a temporary file that is read back and
deleted before the handler returns: no copy of the data is left on disk, whatever happens to the response.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app.research import postgres_export
from app.research.codebook import SYNTHETIC_PREFIX
from app.research.export import ExportSpec, export_rows
from app.research.schemas import ExportFormat
from app.research.writers import MEDIA_TYPES, csv_chunks, parquet_chunks, write_statistics_file

Pseudonymise = Callable[[uuid.UUID], str] | None


def file_name(spec: ExportSpec, export_format: ExportFormat) -> str:
    """E.g. ``research-export-long-scores.csv``; ``synthetic-…`` for a synthetic clinic's (generated) data."""
    kind = "identified" if spec.identified else "research"
    synthetic = SYNTHETIC_PREFIX if spec.synthetic else ""
    return f"{synthetic}{kind}-export-{spec.layout.value}-{spec.level.value}.{export_format.value}"


def stream_chunks(
    sessions: sessionmaker[Session], spec: ExportSpec, export_format: ExportFormat, pseudonymise: Pseudonymise
) -> Iterator[bytes]:
    with sessions() as db, db.begin():
        if pseudonymise is not None and postgres_export.applies(db, spec):
            fast = postgres_export.csv_chunks if export_format is ExportFormat.CSV else postgres_export.parquet_chunks
            yield from fast(db, spec, pseudonymise)
            return
        rows = export_rows(db, spec, pseudonymise=pseudonymise)
        chunks = csv_chunks if export_format is ExportFormat.CSV else parquet_chunks
        yield from chunks(spec.columns, rows)


def export_response(
    *,
    db: Session,
    sessions: sessionmaker[Session],
    spec: ExportSpec,
    export_format: ExportFormat,
    pseudonymise: Pseudonymise,
) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{file_name(spec, export_format)}"'}
    if export_format in (ExportFormat.CSV, ExportFormat.PARQUET):
        return StreamingResponse(
            stream_chunks(sessions, spec, export_format, pseudonymise),
            media_type=MEDIA_TYPES[export_format],
            headers=headers,
        )
    with tempfile.TemporaryDirectory(prefix="research-export-") as directory:
        path = Path(directory) / file_name(spec, export_format)
        write_statistics_file(export_format, spec.columns, export_rows(db, spec, pseudonymise=pseudonymise), path)
        content = path.read_bytes()
    return Response(content=content, media_type=MEDIA_TYPES[export_format], headers=headers)
