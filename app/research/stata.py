"""Variables and value-label sets of a written Stata file renamed: each set named as its variable.

pyreadstat names each value-label set ``<variable><counter>``, which reads as another variable's name (``phq9_i1``
+ ``0``) and is too long for Stata beside a 32-character variable name; Stata users expect a set named as its
variable (``label list phq9_i1``). So the file is written under short stand-in names and renamed here. Names are
fixed-width, zero-padded fields (``dta`` formats 117 to 119, Stata's documented layout) in ``<varnames>``, in the
variable-to-set table ``<value_label_names>`` and in each ``<lbl>`` table's header: they are rewritten in place, and
no offset moves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_NAME_WIDTHS = {b"117": 33, b"118": 129, b"119": 129}
"""Bytes of a name field (32 characters, UTF-8 from 118 on, and a terminating zero)."""


def _section(data: bytes | bytearray, tag: bytes, start: int = 0) -> tuple[int, int]:
    """Where the contents of the first ``<tag>`` section at or after ``start`` begin and end."""
    begin = data.index(b"<" + tag + b">", start) + len(tag) + 2
    return begin, data.index(b"</" + tag + b">", begin)


def _field(name: str, width: int) -> bytes:
    encoded = name.encode()
    if len(encoded) >= width:
        raise ValueError(f"name {name!r} does not fit a {width}-byte field")
    return encoded.ljust(width, b"\0")


def name_variables(path: Path, names: list[str]) -> None:
    """Name the file's variables ``names`` (in order), and each variable's value-label set as the variable."""
    data = bytearray(path.read_bytes())
    release_start, release_end = _section(data, b"release")
    width = _NAME_WIDTHS[bytes(data[release_start:release_end])]
    order_start, _ = _section(data, b"byteorder")
    byteorder: Literal["little", "big"] = "little" if data[order_start : order_start + 3] == b"LSF" else "big"
    names_start, names_end = _section(data, b"varnames")
    sets_start, sets_end = _section(data, b"value_label_names")
    if names_end - names_start != len(names) * width or sets_end - sets_start != len(names) * width:
        raise ValueError("the file's variables are not the names given")
    renamed: dict[bytes, bytes] = {}
    for position, variable in enumerate(names):
        field = _field(variable, width)
        data[names_start + position * width : names_start + (position + 1) * width] = field
        at = sets_start + position * width
        current = bytes(data[at : at + width])
        if current.strip(b"\0"):
            renamed[current] = field
            data[at : at + width] = field
    labels_start, labels_end = _section(data, b"value_labels", data.rindex(b"<value_labels>"))
    at = labels_start
    while at < labels_end:
        if data[at : at + 5] != b"<lbl>":
            raise ValueError("unexpected value label table")
        length = int.from_bytes(data[at + 5 : at + 9], byteorder)
        name_at = at + 9
        current = bytes(data[name_at : name_at + width])
        if current in renamed:
            data[name_at : name_at + width] = renamed[current]
        at = name_at + width + 3 + length + len(b"</lbl>")
    path.write_bytes(bytes(data))
