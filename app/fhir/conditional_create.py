"""Conditional create (``If-None-Exist``, a Bundle entry's ``ifNoneExist``) of Patients and QuestionnaireResponses:
the one criterion supported, ``identifier=[system|]value``, parsed and normalised into a match key."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from app.fhir.errors import Issue, MalformedResource


@dataclass(frozen=True)
class Criteria:
    """Conditional-create criteria (``identifier=[system|]value``), normalised into the unique match key."""

    system: str | None
    value: str
    any_system: bool

    @property
    def key(self) -> str:
        if self.any_system:
            return f"identifier={self.value}"
        return f"identifier={self.system or ''}|{self.value}"


def parse_criteria(if_none_exist: str, *, where: str = "If-None-Exist") -> Criteria:
    """Parse ``identifier=system|value`` (the only search criterion conditional create supports here)."""
    params = urllib.parse.parse_qsl(if_none_exist.strip().lstrip("?"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier" or not params[0][1]:
        raise MalformedResource(
            f"{where} supports exactly one criterion, identifier=[system|]value; got {if_none_exist!r}",
            issues=[Issue("not-supported", f"{where} {if_none_exist!r}: only identifier=[system|]value is supported")],
        )
    system, separator, value = params[0][1].partition("|")
    if not separator:
        return Criteria(system=None, value=system, any_system=True)
    return Criteria(system=system or None, value=value, any_system=False)


def criteria(if_none_exist: str | None) -> Criteria | None:
    """The criteria of a conditional create, or None for a plain create."""
    return parse_criteria(if_none_exist) if if_none_exist else None


def criteria_in_query(params: list[tuple[str, str]]) -> str | None:
    """A POST's URL search parameters as conditional-create criteria (``POST Patient?identifier=…``, as fhirpy's
    ``get_or_create`` sends them), or None when there are none (``_format`` is the format negotiation's)."""
    criteria = [(name, value) for name, value in params if name != "_format"]
    return urllib.parse.urlencode(criteria) if criteria else None
