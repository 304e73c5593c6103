"""The streaming writers, on rows made by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pyarrow.parquet as pq  # type: ignore[import-untyped]

from app.research.variables import Column, Value
from app.research.writers import csv_chunks, parquet_chunks

COLUMNS = [
    Column("patient_id", "string", "Patient", "p"),
    Column("week", "integer", "Week", "w"),
    Column("value", "number", "Value", "v"),
    Column("measured_at", "datetime", "When", "t"),
    Column("band", "integer", "Band", "b", value_labels={1: "low", 2: "high"}),
]
ROWS: list[list[Value]] = [
    ["a", 0, 10, datetime(2026, 1, 5, 9, tzinfo=UTC), 1],
    ["a", 1, 2.5, datetime(2026, 1, 12, 9, tzinfo=UTC), None],
    ["b", 0, None, datetime(2026, 1, 6, 9, tzinfo=UTC), 2],
    ["b", 1, 7, datetime(2026, 1, 13, 9, tzinfo=UTC), 2],
    ["c", 0, 0, datetime(2026, 1, 7, 9, tzinfo=UTC), 1],
]


def test_parquet_is_written_one_row_group_at_a_time_and_reads_back_whole() -> None:
    chunks = list(parquet_chunks(COLUMNS, iter(ROWS), row_group=2))

    # 5 rows in groups of 2: the first two groups are sent as each is written, the last (1 row) with the footer.
    assert len(chunks) == 3
    assert all(chunks)
    content = b"".join(chunks)
    assert pq.ParquetFile(io.BytesIO(content)).num_row_groups == 3
    table = pq.read_table(io.BytesIO(content))
    assert table.column("value").to_pylist() == [10.0, 2.5, None, 7.0, 0.0]
    assert table.column("band").to_pylist() == [1, None, 2, 2, 1]
    assert table.column("measured_at").to_pylist()[0] == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert table.schema.field("band").metadata[b"value_labels"] == b'{"1": "low", "2": "high"}'


def test_csv_has_a_header_empty_missing_values_and_utc_times() -> None:
    content = b"".join(csv_chunks(COLUMNS, iter(ROWS[:3])))

    assert content.decode().splitlines() == [
        "patient_id,week,value,measured_at,band",
        "a,0,10,2026-01-05T09:00:00Z,1",
        "a,1,2.5,2026-01-12T09:00:00Z,",
        "b,0,,2026-01-06T09:00:00Z,2",
    ]


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(1)", "\tx", "\rx"]


def test_no_text_cell_starts_a_formula_and_numbers_stay_numbers() -> None:
    columns = [Column("patient_id", "string", "Patient", "p"), Column("value", "number", "Value", "v")]
    numbers = [-3, -0.5, 2, -1e-05, 0, None]
    rows: list[list[Value]] = [[text, number] for text, number in zip(FORMULAS, numbers, strict=True)]

    content = b"".join(csv_chunks(columns, iter(rows))).decode()

    # OWASP, CSV Injection: a leading ' makes a spreadsheet show the text; a number is written as a number.
    assert list(csv.reader(io.StringIO(content, newline=""))) == [
        ["patient_id", "value"],
        ['\'=HYPERLINK("http://x","y")', "-3"],
        ["'+1+1", "-0.5"],
        ["'-2+3", "2"],
        ["'@SUM(1)", "-1e-05"],
        ["'\tx", "0"],
        ["'\rx", ""],
    ]


def test_a_csv_without_formulas_is_written_exactly_as_csv_writes_it() -> None:
    rows: list[list[Value]] = [["a,b", 1, 'say "hi"', "line\nbreak", None, 2.5, "", "ok"]]
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(rows)
    columns = [Column(f"c{n}", "string", "", "") for n in range(len(rows[0]))]

    content = b"".join(csv_chunks(columns, iter(rows))).decode()

    assert content.splitlines(keepends=True)[1:] == expected.getvalue().splitlines(keepends=True)
