"""How a Questionnaire's items map onto one instrument: compiled once per form, stored with a registered form."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnswerKey(Frozen):
    """One answer the form offers and the instrument option it means.

    ``kind="coding"`` matches ``valueCoding`` by (system, code), or by code alone when either side has no system;
    ``kind="integer"`` matches ``valueInteger`` equal to ``code``.
    """

    kind: Literal["coding", "integer"] = "coding"
    system: str | None = None
    code: str
    value: int | str
    """The instrument option's value, as the scoring engine takes it."""


class MappedItem(Frozen):
    link_id: str
    item: str
    """The instrument's item number (``"3"``)."""
    answers: tuple[AnswerKey, ...]

    @cached_property
    def codings(self) -> dict[str, tuple[tuple[str | None, int | str], ...]]:
        """The ``coding`` answers by code: (system, value) of each, to match a ``valueCoding`` without a scan."""
        found: dict[str, list[tuple[str | None, int | str]]] = {}
        for key in self.answers:
            if key.kind == "coding":
                found.setdefault(key.code, []).append((key.system, key.value))
        return {code: tuple(pairs) for code, pairs in found.items()}

    @cached_property
    def integers(self) -> dict[str, frozenset[int | str]]:
        """The values of the ``integer`` answers by code."""
        found: dict[str, set[int | str]] = {}
        for key in self.answers:
            if key.kind == "integer":
                found.setdefault(key.code, set()).add(key.value)
        return {code: frozenset(values) for code, values in found.items()}


class FormMap(Frozen):
    """The items of one Questionnaire, by linkId: instrument items, declared totals, and items without answers."""

    instrument: str
    items: dict[str, MappedItem]
    totals: tuple[str, ...] = ()
    """linkIds whose answer is a total the client declares (stored and compared, never used)."""
    ignored: tuple[str, ...] = ()
    """linkIds of groups, display items and items explicitly marked unscored: answers there are not used."""

    def link_id_of(self, item: str) -> str | None:
        return next((mapped.link_id for mapped in self.items.values() if mapped.item == item), None)
