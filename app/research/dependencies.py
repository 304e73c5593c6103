"""Request parameters of the research routes: export options, a raw uploaded file with its format, and the short
write transaction that records an export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from app.core.errors import FieldError, InvalidInput
from app.core.schemas import FilterTime
from app.research import imports
from app.research.schemas import ExportFormat, Layout, Level

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})


@dataclass(frozen=True)
class ExportParams:
    export_format: ExportFormat
    layout: Layout
    level: Level
    instruments: list[str] | None
    measured_from: datetime | None
    measured_to: datetime | None
    all_instruments: bool = False


def export_params(
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.CSV,
    layout: Annotated[Layout, Query(description="`long`: a row per score; `wide`: a row per patient-week.")] = (
        Layout.LONG
    ),
    level: Annotated[Level, Query(description="Scores, or item answers.")] = Level.SCORES,
    instruments: Annotated[
        str | None, Query(max_length=500, description="Comma-separated instrument ids; every instrument if omitted.")
    ] = None,
    measured_from: Annotated[
        FilterTime | None,
        Query(alias="from", description="Measured on or after; de-identified exports widen it to its whole month."),
    ] = None,
    measured_to: Annotated[
        FilterTime | None,
        Query(alias="to", description="Measured on or before; de-identified exports widen it to its whole month."),
    ] = None,
    all_instruments: Annotated[
        bool,
        Query(description="Keep the columns of instruments without data in the period (left out by default)."),
    ] = False,
) -> ExportParams:
    names = [name.strip() for name in instruments.split(",")] if instruments else None
    return ExportParams(export_format, layout, level, names, measured_from, measured_to, all_instruments)


ExportParamsDep = Annotated[ExportParams, Depends(export_params)]


async def upload(request: Request) -> bytes:
    """The raw file; its size is bounded for every route by the app's body limit (MAX_BODY_BYTES, 413 beyond)."""
    return await request.body()


def import_format_of(
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
    import_format: Annotated[
        imports.ImportFormat | None, Query(alias="format", description="Overrides the Content-Type.")
    ] = None,
) -> imports.ImportFormat:
    if import_format is not None:
        return import_format
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "text/csv":
        return "csv"
    if media_type in NDJSON_TYPES:
        return "ndjson"
    raise InvalidInput(
        "send the file as text/csv or application/x-ndjson (or name it with ?format=)",
        errors=[
            FieldError(
                field="content-type",
                message="unsupported media type",
                value=media_type or None,
                allowed=["text/csv", "application/x-ndjson"],
            )
        ],
    )


UploadDep = Annotated[bytes, Depends(upload)]
ImportFormatDep = Annotated[imports.ImportFormat, Depends(import_format_of)]
