"""Request bodies an EHR feed, a broken app or an attacker might send, built from a route's valid body.

Each builder returns the bytes to send, or None when it would not change this body (an empty object has no leaves
to turn into NaN).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

LEAF = "\x1eleaf\x1e"
"""Stands for a value while a body is serialised; replaced by raw JSON text afterwards."""
DEPTH = 100_000

Builder = Callable[[Any], bytes | None]


def _text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _replace_leaves(value: Any, *, strings_only: bool = False) -> Any:
    if isinstance(value, dict):
        return {key: _replace_leaves(item, strings_only=strings_only) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_leaves(item, strings_only=strings_only) for item in value]
    if strings_only and not isinstance(value, str):
        return value
    return LEAF


def every_leaf(raw: str) -> Builder:
    """Every scalar value of the body becomes ``raw`` (JSON text such as ``NaN`` or a 400-digit number)."""

    def build(body: Any) -> bytes | None:
        replaced = json.dumps(_replace_leaves(body))
        if json.dumps(LEAF) not in replaced:
            return None
        return replaced.replace(json.dumps(LEAF), raw).encode()

    return build


def every_string(raw: bytes) -> Builder:
    """Every string value becomes ``raw`` (already quoted JSON bytes, possibly not UTF-8)."""

    def build(body: Any) -> bytes | None:
        replaced = json.dumps(_replace_leaves(body, strings_only=True))
        if json.dumps(LEAF) not in replaced:
            return None
        return replaced.encode().replace(json.dumps(LEAF).encode(), raw)

    return build


def every_key(raw: str) -> Builder:
    """Every object key becomes ``raw`` plus a counter (JSON text inside the quotes, e.g. a lone surrogate escape)."""

    def build(body: Any) -> bytes | None:
        counter = iter(range(1_000_000))

        def rename(value: Any) -> Any:
            if isinstance(value, dict):
                return {f"{LEAF}{next(counter)}": rename(item) for item in value.values()}
            if isinstance(value, list):
                return [rename(item) for item in value]
            return value

        renamed = json.dumps(rename(body))
        if json.dumps(LEAF)[1:-1] not in renamed:
            return None
        return renamed.replace(json.dumps(LEAF)[1:-1], raw).encode()

    return build


def top_level_values(raw: str) -> Builder:
    """Each top-level member's value becomes ``raw`` (a wrong type)."""

    def build(body: Any) -> bytes | None:
        if not isinstance(body, dict) or not body:
            return None
        return json.dumps(dict.fromkeys(body, LEAF)).replace(json.dumps(LEAF), raw).encode()

    return build


def truncated(body: Any) -> bytes:
    text = _text(body).encode()
    return text[: max(1, len(text) // 2)]


def constant(raw: bytes) -> Builder:
    return lambda _body: raw


PAYLOADS: dict[str, Builder] = {
    "truncated JSON": truncated,
    "empty body": constant(b""),
    "only whitespace": constant(b" \n\t "),
    f"arrays nested {DEPTH} deep": constant(b"[" * DEPTH + b"]" * DEPTH),
    f"objects nested {DEPTH} deep": constant(b'{"a":' * DEPTH + b"0" + b"}" * DEPTH),
    "null instead of an object": constant(b"null"),
    "an array instead of an object": constant(b"[]"),
    "a string instead of an object": constant(b'"text"'),
    "every value 10**400": every_leaf("1" + "0" * 400),
    "every value a 5000-digit number": every_leaf("9" * 5000),
    "every value 1e400 (overflows to infinity)": every_leaf("1e400"),
    "every value -1e400": every_leaf("-1e400"),
    "every value NaN": every_leaf("NaN"),
    "every value Infinity": every_leaf("Infinity"),
    "every value -Infinity": every_leaf("-Infinity"),
    "every value true": every_leaf("true"),
    "every value 0.5": every_leaf("0.5"),
    "every value an object": every_leaf("{}"),
    "every value a long string": every_leaf(json.dumps("x" * 100_000)),
    "members as arrays": top_level_values("[]"),
    "members as numbers": top_level_values("-1"),
    "every string invalid UTF-8": every_string(b'"\xff\xfe\xc3\x28"'),
    "every string a lone surrogate": every_string(b'"\\ud800"'),
    "every string a reversed surrogate pair": every_string(b'"\\udc00\\ud800"'),
    "every string with a NUL": every_string(b'"a\\u0000b"'),
    "every key a lone surrogate": every_key("\\udfff"),
    "every key with a NUL": every_key("\\u0000"),
}
"""Hostile bodies by name: truncated and deeply nested JSON, huge numbers, wrong types, NaN, invalid Unicode."""
