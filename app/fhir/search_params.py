"""FHIR search as the R4 search rules have it (§3.1.1), shared by every search (routes and Bundle GET entries).

- A search declares the parameters it supports; each one it applies is listed in ``Bundle.link[self]``, and nothing
  else is. Under ``Prefer: handling=strict`` any other parameter (an unknown name, a modifier, ``_summary`` other
  than ``count``, an unsupported ``_sort``) is a 400 naming it; otherwise it is ignored and reported in an
  OperationOutcome entry (``search.mode = outcome``).
- ``_count``: 0 asks for the total only; above ``MAX_COUNT`` it is capped, not refused. ``_summary=count`` is the
  total only too. Paging is by ``_offset`` (the next and previous links carry it).
- Dates (``date``, ``authored``, ``_lastUpdated``) take the prefixes ``eq ne gt lt ge le sa eb`` (``ap`` is refused)
  and any precision from a year to fractions of a second; a value without a zone is read in UTC. A value is the
  range it spans at its precision, so ``date=2026-11`` is all of November and ``gt2026-11`` starts in December.
- References to a patient: ``Patient/{id}``, ``{id}`` or an absolute URL on this server's own base; another server's
  base is refused (400).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, false, not_, true
from starlette.requests import Request

from app.fhir.errors import InvalidSearch, Issue

MAX_COUNT = 500
DEFAULT_COUNT = 100
MAX_OFFSET = 10_000_000
MAX_VALUE_LENGTH = 1_000
RESULT_PARAMETERS = frozenset({"_count", "_offset", "_summary"})
"""Parameters every search takes (``_format`` is the format negotiation's, never a search's)."""
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
UNSUPPORTED_PREFIXES = ("ap",)
_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d{1,9})?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@dataclass(frozen=True)
class SearchRequest:
    """What a search was asked: its parameters in order, as sent, and the server's base URL (``…/fhir``)."""

    resource_type: str
    params: tuple[tuple[str, str], ...]
    base: str
    strict: bool = False


@dataclass
class Search:
    """A search's parameters read against what it supports: the values it applies and what it ignores."""

    request: SearchRequest
    count: int = DEFAULT_COUNT
    offset: int = 0
    total_only: bool = False
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the search changed of what was asked (a capped ``_count``), reported as information."""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.applied if key.partition(":")[0] == name]

    def first(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def ignore(self, name: str, value: str, why: str) -> None:
        """Leave a parameter unapplied: a 400 under ``handling=strict``, else reported with the results."""
        if self.request.strict:
            detail = f"{name}={value}: {why}"
            raise InvalidSearch(
                f"search parameter {name} is not supported here",
                issues=[Issue("not-supported", detail, (name,))],
            )
        self.applied = [(key, val) for key, val in self.applied if (key, val) != (name, value)]
        self.ignored.append(f"{name}={value}: {why}")


def fhir_base(request: Request) -> str:
    """This server's FHIR base URL as the client addressed it (``http://host/fhir``)."""
    return str(request.url_for("metadata")).removesuffix("/metadata")


def handling_strict(request: Request) -> bool:
    """``Prefer: handling=strict`` (preferences are separated by commas or semicolons)."""
    preferences = request.headers.get("prefer", "").replace(";", ",").split(",")
    return any(part.replace(" ", "").lower() == "handling=strict" for part in preferences)


def search_request(request: Request, resource_type: str, *, base: str) -> SearchRequest:
    return SearchRequest(resource_type, tuple(request.query_params.multi_items()), base, handling_strict(request))


def read(
    request: SearchRequest, supported: Mapping[str, frozenset[str]], *, sorts: frozenset[str] = frozenset()
) -> Search:
    """Read the parameters: ``supported`` maps each name to the modifiers it takes (most take none)."""
    search = Search(request)
    for name, value in request.params:
        base, _, modifier = name.partition(":")
        if name == "_format":
            continue
        if len(value) > MAX_VALUE_LENGTH or "\x00" in value or len(name) > MAX_VALUE_LENGTH:
            raise invalid(name[:100], value[:100], f"a value is at most {MAX_VALUE_LENGTH} characters, without NUL")
        if base in RESULT_PARAMETERS and not modifier:
            _result_parameter(search, base, value)
        elif base == "_sort" and not modifier:
            search.applied.append((name, value))
            if value not in sorts:
                allowed = ", ".join(sorted(sorts)) or "none"
                search.ignore(name, value, f"this search sorts by {allowed} only")
        elif base in supported and (not modifier or modifier in supported[base]):
            search.applied.append((name, value))
        else:
            search.applied.append((name, value))
            what = f"the modifier :{modifier}" if base in supported else "this parameter"
            search.ignore(name, value, f"{request.resource_type} search does not support {what}")
    if not search.total_only and "_count" not in {key for key, _ in search.applied}:
        search.applied.append(("_count", str(search.count)))  # the page size applied, so every page link keeps it
    return search


def _result_parameter(search: Search, name: str, value: str) -> None:
    if name == "_summary":
        search.applied.append((name, value))
        if value == "count":
            search.total_only = True
        else:
            search.ignore(name, value, "only _summary=count is supported")
        return
    number = _integer(name, value)
    if name == "_count":
        if number > MAX_COUNT:
            search.notes.append(f"_count={number} was capped at {MAX_COUNT}")
        search.count = min(number, MAX_COUNT)
        search.total_only = search.total_only or number == 0
        search.applied.append((name, str(search.count)))
    else:
        search.offset = min(number, MAX_OFFSET)
        if search.offset:
            search.applied.append((name, str(search.offset)))


def _integer(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise invalid(name, value, "a whole number from 0 is expected")
    return int(value)


def invalid(name: str, value: str, why: str) -> InvalidSearch:
    detail = f"{name}={value[:200]}: {why}"
    return InvalidSearch(detail, issues=[Issue("invalid", detail, (name,))])


def searchset(
    search: Search,
    resources: Sequence[FHIRResourceModel | dict[str, Any]],
    *,
    total: int,
    has_more: bool,
) -> dict[str, Any]:
    """The searchset Bundle of a page: self link (the parameters applied), next and previous links, ``fullUrl``
    on every entry, and an OperationOutcome entry naming what was ignored."""
    request = search.request
    page_base = f"{request.base}/{request.resource_type}"
    links = [{"relation": "self", "url": _url(page_base, search.applied)}]
    if not search.total_only:
        kept = [(key, value) for key, value in search.applied if key != "_offset"]
        if has_more:
            links.append(
                {"relation": "next", "url": _url(page_base, [*kept, ("_offset", str(search.offset + search.count))])}
            )
        if search.offset > 0:
            previous = max(search.offset - search.count, 0)
            links.append(
                {
                    "relation": "previous",
                    "url": _url(page_base, kept + ([("_offset", str(previous))] if previous else [])),
                }
            )
    entries: list[dict[str, Any]] = []
    if not search.total_only:
        for resource in resources:
            data = resource if isinstance(resource, dict) else resource.model_dump(mode="json", exclude_none=True)
            entries.append(
                {
                    "fullUrl": f"{request.base}/{data['resourceType']}/{data['id']}",
                    "resource": data,
                    "search": {"mode": "match"},
                }
            )
    issues = [("warning", "not-supported", f"ignored: {why}") for why in search.ignored]
    issues += [("information", "informational", note) for note in search.notes]
    if issues:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": severity, "code": code, "diagnostics": text[:1000]}
                        for severity, code, text in issues
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(base: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params, safe='|,:/')}" if params else base


def page(items: Sequence[Any], search: Search) -> tuple[list[Any], bool]:
    """A page of results already in memory, and whether more follow."""
    if search.total_only:
        return [], False
    end = search.offset + search.count
    return list(items[search.offset : end]), len(items) > end


# References


def patient_reference(search: Search, name: str, value: str) -> uuid.UUID | None:
    """The patient a reference names (``Patient/{id}``, ``{id}``, ``{this server's base}/Patient/{id}``), or None
    when it names no possible patient (so nothing matches). Another server's base is a 400."""
    reference = value
    if "://" in reference:
        own = f"{search.request.base}/Patient/"
        if not reference.startswith(own):
            raise invalid(name, value, f"a reference to another server; this server's base is {search.request.base}")
        reference = reference.removeprefix(own)
    else:
        reference = reference.removeprefix("Patient/")
    try:
        return uuid.UUID(reference) if "/" not in reference else None
    except ValueError:
        return None


def token(value: str) -> tuple[str | None, str]:
    """``[system|]code``: the system is None when not given (any system), "" when given empty (no system)."""
    system, separator, code = value.rpartition("|")
    return (system if separator else None), code


# Dates


Bound = datetime | str
"""An instant in UTC, or ``-inf``/``+inf`` where a value reaches outside what a UTC datetime holds (years 1 to 9999)."""


@dataclass(frozen=True)
class DateRange:
    """A date search value: its prefix and the instants it spans, ``[start, end)``."""

    prefix: str
    start: Bound
    end: Bound


def date_range(name: str, value: str) -> DateRange:
    prefix, text = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
    if prefix in UNSUPPORTED_PREFIXES:
        raise invalid(name, value, f"the prefix {prefix} is not supported (supported: {', '.join(DATE_PREFIXES)})")
    if prefix not in DATE_PREFIXES:
        raise invalid(name, value, f"unknown prefix {prefix!r} (supported: {', '.join(DATE_PREFIXES)})")
    match = _DATE.fullmatch(text)
    if match is None:
        raise invalid(name, value, "a date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][zone])")
    parts = match.groupdict()
    try:
        start, step = _start(parts)
    except ValueError:
        raise invalid(name, value, "not a date that exists") from None
    zone = parts["zone"]
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59:
            raise invalid(name, value, "a zone offset is at most ±14:00")
        offset = sign * timedelta(hours=hours, minutes=minutes)
    end = _advance(start, step)
    return DateRange(prefix, _in_utc(start, offset), "+inf" if end is None else _in_utc(end, offset))


def date_condition(column: SQLColumnExpression[datetime], searched: DateRange) -> ColumnElement[bool]:
    """Whether an instant column lies where the value asks, per the prefix (an instant spans no range)."""
    at_or_after_start = _at_or_after(column, searched.start)
    before_end = not_(_at_or_after(column, searched.end))
    conditions = {
        "eq": and_(at_or_after_start, before_end),
        "ne": not_(and_(at_or_after_start, before_end)),
        "gt": _at_or_after(column, searched.end),
        "sa": _at_or_after(column, searched.end),
        "lt": not_(at_or_after_start),
        "eb": not_(at_or_after_start),
        "ge": at_or_after_start,
        "le": before_end,
    }
    return conditions[searched.prefix]


def _at_or_after(column: SQLColumnExpression[datetime], bound: Bound) -> ColumnElement[bool]:
    if bound == "-inf":
        return true()
    if bound == "+inf":
        return false()
    assert isinstance(bound, datetime)
    return column >= bound


def _start(parts: dict[str, str | None]) -> tuple[datetime, str]:
    year = int(parts["year"] or 0)
    month, day = int(parts["month"] or 1), int(parts["day"] or 1)
    hour, minute, second = int(parts["hour"] or 0), int(parts["minute"] or 0), int(parts["second"] or 0)
    fraction = parts["fraction"]
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    start = datetime(year, month, day, hour, minute, second, micro)  # ValueError for a date that does not exist
    given = [
        ("microsecond", fraction),
        ("second", parts["second"]),
        ("minute", parts["minute"]),
        ("day", parts["day"]),
        ("month", parts["month"]),
        ("year", parts["year"]),
    ]
    return start, next(unit for unit, text in given if text)


def _advance(start: datetime, step: str) -> datetime | None:
    """The first instant after the value's range (naive, in the value's own zone); None past year 9999."""
    try:
        if step == "year":
            return start.replace(year=start.year + 1)
        if step == "month":
            if start.month == 12:
                return start.replace(year=start.year + 1, month=1)
            return start.replace(month=start.month + 1)
        units = {"day": "days", "minute": "minutes", "second": "seconds", "microsecond": "microseconds"}
        return start + timedelta(**{units[step]: 1})
    except (ValueError, OverflowError):
        return None


def _in_utc(moment: datetime, offset: timedelta) -> Bound:
    """The naive ``moment`` at ``offset`` from UTC as a UTC instant, or the infinity it overflows to."""
    try:
        return (moment - offset).replace(tzinfo=UTC)
    except OverflowError:
        return "+inf" if offset < timedelta(0) else "-inf"
