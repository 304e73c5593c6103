"""The body of a FHIR write: read as JSON (415 for other media types), parsed with duplicate keys refused, and bounded
(nesting, string length, lone surrogates) before any model sees it. ``FhirBody`` is the route parameter."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.json_body import DuplicateKey, loads_unique
from app.fhir.errors import Issue, MalformedResource, UnsupportedMediaType
from app.fhir.http import JSON_MEDIA_TYPES


@dataclass(frozen=True)
class ReceivedResource:
    """The body as received (kept verbatim) and parsed."""

    text: str
    data: dict[str, Any]


async def received_resource(request: Request) -> ReceivedResource:
    """Read a JSON resource body: 415 for other media types, 400 OperationOutcome for JSON that does not parse."""
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType(f"send application/fhir+json, not {content_type}")
    return parse_resource(await request.body())


def parse_resource(body: bytes) -> ReceivedResource:
    try:
        text = body.decode("utf-8")
        data = loads_unique(text, parse_constant=_reject_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise MalformedResource("the body is not UTF-8") from None
    except DuplicateKey as exc:
        raise MalformedResource(
            f"the body is not valid here: {exc.msg}, and a value must never silently replace another; nothing was "
            "stored"
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedResource(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; nothing was stored"
        ) from None
    except RecursionError:
        raise MalformedResource(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise MalformedResource(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise MalformedResource("the body is not a FHIR resource: a JSON object with a resourceType is required")
    _check_values(data, text)
    return ReceivedResource(text=text, data=data)


MAX_DEPTH = 64
"""JSON nesting accepted: a Questionnaire's item groups rarely pass 10 levels; recursion-bound code stays safe."""


MAX_TEXT_CHARACTERS = 65_536
"""Longest string a FHIR body may hold (a narrative's ``text.div``, an item's text, an answer, an identifier)."""


def _check_values(data: dict[str, Any], text: str) -> None:
    """Refuse what JSON allows but FHIR and the database do not: absurd nesting, text longer than
    ``MAX_TEXT_CHARACTERS``, lone surrogates (``"\\ud800"``)."""
    if _suspect(data, MAX_DEPTH - 1):  # one walk for both; which it was is found out the slow way
        if _nests_deeper(data, MAX_DEPTH - 1):
            raise MalformedResource(f"the body nests deeper than {MAX_DEPTH} levels")
        where = _too_long(data, str(data["resourceType"])) or str(data["resourceType"])
        diagnostics = f"{where} is longer than {MAX_TEXT_CHARACTERS} characters; nothing was stored"
        raise MalformedResource(diagnostics, issues=[Issue("too-long", diagnostics, (where,))])
    # A surrogate can only come from a \\uD800-\\uDFFF escape (the text itself is valid UTF-8), so most bodies
    # need no walk over their strings at all.
    if _SURROGATE_ESCAPE.search(text) and any(_lone_surrogate(value) for value in _strings(data)):
        raise MalformedResource("the body holds a lone UTF-16 surrogate, which is not Unicode text")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _suspect(value: Any, levels: int) -> bool:
    """Whether any object or array nests more than ``levels`` further levels below ``value``, or any string value
    is longer than ``MAX_TEXT_CHARACTERS``: the walk every body gets, so one test per value."""
    for child in value.values() if type(value) is dict else value:
        kind = type(child)
        if kind is str:
            if len(child) > MAX_TEXT_CHARACTERS:
                return True
        elif (kind is dict or kind is list) and (levels == 0 or _suspect(child, levels - 1)):
            return True
    return False


def _nests_deeper(value: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether any object or array nests more than ``levels`` further levels below ``value``."""
    for child in value.values() if type(value) is dict else value:
        if (type(child) is dict or type(child) is list) and (levels == 0 or _nests_deeper(child, levels - 1)):
            return True
    return False


def _too_long(value: Any, path: str) -> str | None:
    """The FHIRPath of the first string longer than ``MAX_TEXT_CHARACTERS``, or None (after ``_suspect`` found one)."""
    if type(value) is str:
        return path if len(value) > MAX_TEXT_CHARACTERS else None
    if type(value) is dict:
        for key, child in value.items():
            if (type(child) is str and len(child) <= MAX_TEXT_CHARACTERS) or type(child) in _SHORT:
                continue
            if (found := _too_long(child, f"{path}.{key}")) is not None:
                return found
    elif type(value) is list:
        for index, child in enumerate(value):
            if (found := _too_long(child, f"{path}[{index}]")) is not None:
                return found
    return None


_SHORT = frozenset({int, float, bool, type(None)})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)
    elif isinstance(value, str):
        yield value


def _lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    """A JSON number with a fraction or exponent; one too large for a float (``1e400``) would become infinity, which
    FHIR's numbers cannot hold and JSON cannot write back (orjson writes it as null)."""
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"the number {literal[:40]} is too large (infinite as a decimal)")
    return value


FhirBody = Annotated[ReceivedResource, Depends(received_resource)]
