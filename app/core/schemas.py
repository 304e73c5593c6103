"""Schema pieces shared by several domains."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)

from app.core.datetimes import ClinicalTime as ClinicalTime
from app.core.datetimes import ExpiryTime as ExpiryTime
from app.core.datetimes import FilterTime as FilterTime


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        """Text never carries NUL (U+0000): PostgreSQL cannot store it, so no backend accepts it."""
        if _has_nul(value):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(item) for item in value)
    return False


def _strict_answer(value: Any) -> int | str | None:
    """Answers are integers, option codes (``"1a"``) or null. ``true``, ``2.0`` are refused, never coerced."""
    if value is None or type(value) is int or type(value) is str:
        return value
    kind = {bool: "a boolean", float: "a number with a fraction"}.get(type(value), f"a {type(value).__name__}")
    raise ValueError(f'an answer is an integer option value, an option code such as "1a", or null; got {kind}')


ItemAnswer = Annotated[
    int | str | None,
    PlainValidator(_strict_answer),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 10}, {"type": "null"}]}),
]
ItemAnswers = Annotated[
    dict[Annotated[str, Field(max_length=10)], ItemAnswer],
    Field(
        description='Answers keyed by the published item number as a string ("1", "2", …); null or absent = missing.',
        examples=[{"1": 3, "2": 0, "3": 1, "4": 2, "5": 0, "6": 0, "7": 1, "8": 0, "9": 3}],
        max_length=200,
    ),
]
DeclaredTotal = Annotated[
    float | None,
    Field(
        strict=True,
        allow_inf_nan=False,
        description="A total the client computed itself: stored and compared, never used as the score.",
    ),
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    has_more: bool


SHOWN_ONCE = "x-shown-once"
"""OpenAPI mark of a response field that is a secret shown once (an API key, an enrolment code, a signing secret)."""


def shown_once(description: str) -> Any:
    """A response field holding a secret that is shown in this response only and never stored in clear.

    The Idempotency-Key record of such a response keeps it without these fields, and a replay is refused (409
    ``secret-not-replayable``) instead of repeating the secret. The mark shows in the OpenAPI schema as
    ``x-shown-once: true``. Only a model's own (top-level) fields are looked at.
    """
    return Field(description=description, json_schema_extra={SHOWN_ONCE: True})


@functools.cache
def shown_once_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s fields marked ``shown_once``, as serialised (aliases)."""
    return frozenset(
        field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get(SHOWN_ONCE) is True
    )
