"""Serialise export rows: CSV and Parquet as streams of bytes in constant memory; SPSS and Stata as files.

CSV is RFC 4180 (UTF-8 without BOM, a header of plain snake_case names, empty = missing), which pandas, R's
``read.csv`` / ``readr`` and spreadsheets read as is; no text cell of a CSV starts a formula (``neutralise``).
Parquet is written one row group at a time into a sink that is drained after each group, so neither format ever
holds the whole export. SPSS ``.sav`` and Stata ``.dta`` need the whole table (pyreadstat writes a file from a data
frame), so those two are bounded by the export's size.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pyreadstat

from app.research.missing import CODE_LABELS, SPSS_MISSING_RANGE, Missing
from app.research.schemas import ExportFormat
from app.research.stata import name_variables
from app.research.variables import Column, Value

CSV_FLUSH_ROWS = 2_000
"""Rows per chunk sent: each chunk is a hand-off from the threadpool to the event loop."""
PARQUET_ROW_GROUP = 50_000
STATA_LABEL_LENGTH = 80
"""Stata's limit for a variable label (SPSS keeps a label whole)."""
STATA_VERSION = 15
SPSS_INTEGER_FORMAT = "F8.0"
STATA_INTEGER_FORMAT = "%8.0g"

MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
    ExportFormat.SAV: "application/x-spss-sav",
    ExportFormat.DTA: "application/x-stata-dta",
    ExportFormat.REDCAP: "text/csv; charset=utf-8",
}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV Injection)."""
FORMULA_GUARD = "'"
_REWRITE = re.compile(r'(?:^|,)"?[=+\-@\t\r]|\r', re.MULTILINE)
"""Where a written cell may start a formula (at a line's or a cell's start, quoted or not), or a carriage return
that ``csv`` left unquoted. It also matches a negative number or a comma inside a quoted cell; it never misses a
cell (a false alarm only costs a rewrite)."""
_QUOTED = re.compile(r'[,"\r\n]')


def neutralise(text: str) -> str:
    """A text cell as a spreadsheet must show it: one starting a formula gets a leading ``'`` (OWASP, CSV Injection).

    By type, never by look: every ``str`` cell is text (an identifier ``-3`` is written ``'-3``), while numbers are
    ``int`` or ``float`` and written as numbers (a score of -0.5 stays -0.5). ``csv`` quotes a cell holding a
    delimiter, quote or line break, so no part of a cell can become a cell of its own.
    """
    return FORMULA_GUARD + text if text.startswith(FORMULA_STARTS) else text


def neutralised_row(row: Iterable[Any]) -> list[Any]:
    """The row with every text cell neutralised (numbers, missing values and datetimes as they are)."""
    return [neutralise(value) if isinstance(value, str) else value for value in row]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace('"', '""') + '"' if _QUOTED.search(text) else text


def csv_line(row: Iterable[Any]) -> str:
    """One CSV line as ``csv.writer(lineterminator="\\n")`` writes it, except that a cell holding a carriage return
    is quoted too (Python 3.11's writer quotes only the line terminator's characters: a bare ``\\r`` breaks the
    file for every reader). Cells are written as they are: neutralise them first."""
    return ",".join(map(_csv_cell, row)) + "\n"


def _csv_value(value: Value) -> Value:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _csv_text(writer: Any, buffer: io.StringIO, rows: list[list[Value]]) -> str:
    """The rows as CSV, their text cells neutralised.

    Written as they are first, and written again, neutralised, only if a cell of the text may start a formula or
    holds a carriage return: that is rare (a negative score, an identifier such as ``=…``), and checking the text
    once costs far less than checking every cell of every row.
    """
    start = buffer.tell()
    writer.writerows(rows)
    if _REWRITE.search(buffer.getvalue(), start):
        buffer.seek(start)
        buffer.truncate()
        buffer.writelines(csv_line(neutralised_row(row)) for row in rows)
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_chunks(columns: Sequence[Column], rows: Iterable[list[Value]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(neutralised_row(column.name for column in columns))
    # Only datetime columns need formatting; a de-identified export has none, so its rows are written as they are.
    dated = any(column.type == "datetime" for column in columns)
    pending: list[list[Value]] = []
    for row in rows:
        pending.append([_csv_value(value) for value in row] if dated else row)
        if len(pending) >= CSV_FLUSH_ROWS:
            yield _csv_text(writer, buffer, pending).encode()
            pending = []
    yield _csv_text(writer, buffer, pending).encode()


_ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "datetime": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """Each field carries its label, description and value labels as metadata (R arrow and pyarrow keep them)."""
    fields = []
    for column in columns:
        metadata = {"label": column.title, "description": column.description}
        if column.value_labels:
            metadata["value_labels"] = json.dumps({str(code): label for code, label in column.value_labels.items()})
        fields.append(pa.field(column.name, _ARROW_TYPES[column.type], metadata=metadata))
    return pa.schema(fields)


class DrainedSink:
    """A write-only file that hands out what was written since the last drain; ``tell`` counts every byte."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks = []
        return out


def parquet_chunks(
    columns: Sequence[Column], rows: Iterable[list[Value]], *, row_group: int = PARQUET_ROW_GROUP
) -> Iterator[bytes]:
    schema = arrow_schema(columns)
    # Parquet has no missing-data codes: a coded cell is a null, and the wide layout's status columns tell why.
    coded = [column.coded for column in columns]
    sink = DrainedSink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema)
    batch: list[list[Value]] = []

    def flush() -> None:
        values = [
            [None if isinstance(value, Missing) else value for value in cells] if is_coded else cells
            for cells, is_coded in zip(zip(*batch, strict=True), coded, strict=True)
        ]
        arrays = [pa.array(column, type=field.type) for column, field in zip(values, schema, strict=True)]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= row_group:
            flush()
            yield sink.drain()
    if batch:
        flush()
    writer.close()
    yield sink.drain()


def data_frame(columns: Sequence[Column], rows: Iterable[list[Value]], export_format: ExportFormat) -> pd.DataFrame:
    """The whole export as a frame for pyreadstat: integers with gaps become floats, datetimes naive UTC.

    A missing-data code stays its number in SPSS (declared user-missing) and becomes its extended missing value's
    letter in Stata (pyreadstat writes ``a`` as ``.a``); in a text column it is an empty string in both.
    """
    table = list(rows)
    frame = pd.DataFrame.from_records(table, columns=[column.name for column in columns])
    stata = export_format is ExportFormat.DTA
    for position, column in enumerate(columns):
        series = frame[column.name]
        if column.type in ("integer", "number"):
            # From the rows themselves: pandas would turn a code into a plain number.
            cells = [row[position] for row in table] if stata and column.coded else []
            if any(isinstance(value, Missing) for value in cells):
                frame[column.name] = pd.Series(
                    [_stata_cell(value) for value in cells], index=series.index, dtype=object
                )
            else:
                frame[column.name] = pd.to_numeric(series, errors="coerce").astype("float64")
        elif column.type == "datetime":
            frame[column.name] = pd.to_datetime(series, utc=True).dt.tz_localize(None)
        else:
            cells = [row[position] for row in table]
            frame[column.name] = pd.Series(
                ["" if value is None or isinstance(value, Missing) else str(value) for value in cells],
                index=series.index,
                dtype=object,
            )
    return frame


def _stata_cell(value: Any) -> Any:
    if isinstance(value, Missing):
        return value.stata
    return float("nan") if value is None else float(value)


def _labels(columns: Sequence[Column], export_format: ExportFormat) -> list[str | None]:
    """Variable labels at full length where the format allows it: Stata's are at most 80 characters."""
    if export_format is ExportFormat.DTA:
        return [column.title[:STATA_LABEL_LENGTH] for column in columns]
    return [column.title for column in columns]


def _value_labels(columns: Sequence[Column], export_format: ExportFormat) -> dict[str, dict[Any, str]]:
    """Each labelled or coded numeric column's value labels, the missing-data codes' labels included."""
    labels: dict[str, dict[Any, str]] = {}
    for column in columns:
        if column.type not in ("integer", "number"):
            continue
        own: dict[Any, str] = {float(code): label for code, label in column.value_labels.items()}
        if column.coded:
            if export_format is ExportFormat.DTA:
                own |= {code.stata: code.label for code in Missing}
            else:
                own |= {float(code): label for code, label in CODE_LABELS.items()}
        if own:
            labels[column.name] = own
    return labels


def _measure(column: Column) -> str:
    if column.value_labels and (column.score_key or column.item):
        return "ordinal"
    return "nominal" if column.type == "string" or column.value_labels else "scale"


def write_statistics_file(
    export_format: ExportFormat, columns: Sequence[Column], rows: Iterable[list[Value]], path: Path
) -> None:
    """Write a ``.sav`` or ``.dta`` with variable labels (titles), value labels (bands, options, yes/no, missing-data
    codes), the codes declared missing, and integer display formats for integer columns."""
    frame = data_frame(columns, rows, export_format)
    labels = _labels(columns, export_format)
    value_labels = _value_labels(columns, export_format)
    coded = [column.name for column in columns if column.coded and column.type in ("integer", "number")]
    integers = [column.name for column in columns if column.type == "integer"]
    if export_format is ExportFormat.SAV:
        measures = {column.name: _measure(column) for column in columns}
        pyreadstat.write_sav(
            frame,
            str(path),
            column_labels=labels,
            variable_value_labels=value_labels,
            variable_measure=measures,
            missing_ranges={name: [SPSS_MISSING_RANGE] for name in coded},
            variable_format=dict.fromkeys(integers, SPSS_INTEGER_FORMAT),
        )
    elif export_format is ExportFormat.DTA:
        # Written under short stand-in names, then renamed in the file: pyreadstat names each value-label set
        # ``<variable><counter>``, too long for Stata beside a 32-character variable name (``stata``).
        stand_in = {column.name: f"v{position}" for position, column in enumerate(columns)}
        frame = frame.rename(columns=stand_in)
        pyreadstat.write_dta(
            frame,
            str(path),
            column_labels=labels,
            variable_value_labels={stand_in[name]: labels_ for name, labels_ in value_labels.items()},
            missing_user_values={stand_in[name]: [code.stata for code in Missing] for name in coded},
            variable_format={stand_in[name]: STATA_INTEGER_FORMAT for name in integers},
            version=STATA_VERSION,
        )
        name_variables(path, [column.name for column in columns])
    else:
        raise ValueError(f"{export_format} is not a statistics-package format")
