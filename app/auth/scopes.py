"""SMART on FHIR system scopes (App Launch 2.2): what a backend client may do, and to which FHIR resources.

A scope is ``system/<Type or *>.<interactions>``: v2 letters in the order ``c`` (create), ``r`` (read), ``u``
(update), ``d`` (delete), ``s`` (search), or v1's ``read`` (``rs``), ``write`` (``cud``) and ``*`` (``cruds``).
Backend services act for no user and no patient, so ``patient/`` and ``user/`` scopes and scopes narrowed by
``?param=value`` are not granted. A client's scopes give it, in its own clinic, exactly the interactions they name on
the FHIR routes, and through them the permissions of ``PERMISSIONS`` (never more than an integration key's); it may
call nothing outside ``/fhir``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.auth.permissions import Permission
from app.core.errors import PermissionDenied

LETTERS = "cruds"
RESOURCE_TYPES = ("Patient", "Questionnaire", "QuestionnaireResponse", "Observation", "Task")
"""The FHIR resource types this server serves (``/fhir/metadata``)."""
V1_ACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"system/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<action>[a-z*]{1,5})")

PERMISSIONS: Mapping[tuple[str, str], Permission] = {
    ("Patient", "r"): Permission.PATIENTS_READ,
    ("Patient", "s"): Permission.PATIENTS_READ,
    ("Patient", "c"): Permission.PATIENTS_WRITE,
    ("Patient", "u"): Permission.PATIENTS_WRITE,
    ("QuestionnaireResponse", "r"): Permission.MEASUREMENTS_READ,
    ("QuestionnaireResponse", "s"): Permission.MEASUREMENTS_READ,
    ("QuestionnaireResponse", "c"): Permission.MEASUREMENTS_WRITE,
    ("QuestionnaireResponse", "u"): Permission.MEASUREMENTS_WRITE,
    ("Observation", "r"): Permission.MEASUREMENTS_READ,
    ("Observation", "s"): Permission.MEASUREMENTS_READ,
    ("Task", "r"): Permission.MEASUREMENTS_READ,
    ("Task", "s"): Permission.MEASUREMENTS_READ,
    ("Questionnaire", "r"): Permission.INSTRUMENTS_READ,
    ("Questionnaire", "s"): Permission.INSTRUMENTS_READ,
    ("Questionnaire", "c"): Permission.QUESTIONNAIRES_MANAGE,
    ("Questionnaire", "u"): Permission.QUESTIONNAIRES_MANAGE,
}
"""(resource type, interaction) → the permission its routes require. Interactions not listed have no route here."""
CEILING = frozenset(PERMISSIONS.values())
"""Every permission a SMART client can be granted (a subset of the integration role's)."""
SUPPORTED_SCOPES = ("system/*.cruds",) + tuple(
    f"system/{name}.{''.join(letter for letter in LETTERS if (name, letter) in PERMISSIONS)}" for name in RESOURCE_TYPES
)
"""``system/*.cruds`` and the widest useful scope of each resource type: what ``scopes_supported`` lists."""


@dataclass(frozen=True)
class Scope:
    resource_type: str
    """A resource type of ``RESOURCE_TYPES`` or ``*``."""
    letters: str
    """Interactions, in ``cruds`` order."""

    def __str__(self) -> str:
        return f"system/{self.resource_type}.{self.letters}"


def _ordered(letters: Iterable[str]) -> str:
    chosen = set(letters)
    return "".join(letter for letter in LETTERS if letter in chosen)


def parse(text: str) -> Scope | None:
    """A system scope of a served resource type (v2, or v1 ``read``/``write``/``*``); None for anything else."""
    match = _SCOPE.fullmatch(text)
    if match is None:
        return None
    resource_type, action = match["type"], match["action"]
    if resource_type != "*" and resource_type not in RESOURCE_TYPES:
        return None
    letters = V1_ACTIONS.get(action, action)
    if not letters or any(letter not in LETTERS for letter in letters) or _ordered(letters) != letters:
        return None
    return Scope(resource_type, letters)


def grant(requested: Iterable[Scope], allowed: Iterable[Scope]) -> list[Scope]:
    """What is granted: each requested scope narrowed to what the client's allowed scopes cover."""
    allowed = list(allowed)
    granted: dict[str, set[str]] = {}
    for asked in requested:
        for permitted in allowed:
            if asked.resource_type not in ("*", permitted.resource_type) and permitted.resource_type != "*":
                continue
            resource_type = permitted.resource_type if asked.resource_type == "*" else asked.resource_type
            letters = set(asked.letters) & set(permitted.letters)
            if letters:
                granted.setdefault(resource_type, set()).update(letters)
    if "*" in granted:  # a type's letters already covered by the wildcard's say nothing more
        for resource_type in [t for t in granted if t != "*"]:
            granted[resource_type] -= granted["*"]
    return [Scope(t, _ordered(letters)) for t, letters in sorted(granted.items()) if letters]


@dataclass(frozen=True)
class SmartGrants:
    """The scopes of a SMART access token: what its client may do on ``/fhir``."""

    scopes: tuple[Scope, ...]

    @classmethod
    def of(cls, text: str) -> SmartGrants:
        """The grants of a stored, space-separated scope string (written by the token endpoint)."""
        return cls(tuple(scope for word in text.split() if (scope := parse(word)) is not None))

    def letters(self, resource_type: str) -> set[str]:
        return {
            letter for scope in self.scopes if scope.resource_type in ("*", resource_type) for letter in scope.letters
        }

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset(
            permission
            for (resource_type, letter), permission in PERMISSIONS.items()
            if letter in self.letters(resource_type)
        )

    def require(self, resource_type: str, letter: str) -> None:
        if letter not in self.letters(resource_type):
            raise PermissionDenied(f"the access token's scopes do not grant system/{resource_type}.{letter}")

    def require_route(self, method: str, template: str) -> None:
        """A route's interaction is granted: only ``/fhir`` routes, and only the interactions the scopes name."""
        if template != "/fhir" and not template.startswith("/fhir/"):
            raise PermissionDenied("a SMART access token is for the FHIR API (/fhir) only")
        segments = [segment for segment in template.removeprefix("/fhir").split("/") if segment]
        if not segments:  # a transaction or batch Bundle: each entry is checked on its own (require_entry)
            if method == "POST" and any(letter in "cu" for scope in self.scopes for letter in scope.letters):
                return
            raise PermissionDenied("the access token's scopes grant no create or update")
        interaction = route_interaction(method, segments)
        if interaction is None:
            raise PermissionDenied(f"no SMART scope grants {method} {template}")
        self.require(*interaction)

    def require_entry(self, method: str, url: str) -> None:
        """A Bundle entry's interaction (``request.method`` and ``request.url``) is granted."""
        path = url.split("?", 1)[0].strip("/")
        parts = path.split("/") if path else []
        segments = parts[:1] + [part if part.startswith(("_", "$")) else "{id}" for part in parts[1:]]
        interaction = route_interaction(method, segments) if segments else None
        if interaction is None:
            raise PermissionDenied(f"no SMART scope grants {method} {url[:100]}")
        self.require(*interaction)


def route_interaction(method: str, segments: list[str]) -> tuple[str, str] | None:
    """(resource type, interaction letter) of a FHIR route's path segments after ``/fhir``; None if it is none of
    the type's interactions (an operation such as ``$extract``: refused to SMART tokens until a scope is assigned)."""
    resource_type, rest = segments[0], segments[1:]
    if resource_type.startswith(("{", "$", "_")):
        return None
    is_id = [part.startswith("{") for part in rest]
    letter: str | None = None
    if not rest:
        letter = {"GET": "s", "POST": "c"}.get(method)
    elif rest == ["_search"]:
        letter = "s" if method in ("GET", "POST") else None
    elif rest == ["_history"]:
        letter = "s" if method == "GET" else None
    elif is_id == [True]:
        letter = {"GET": "r", "HEAD": "r", "PUT": "u", "PATCH": "u", "DELETE": "d"}.get(method)
    elif len(rest) in (2, 3) and is_id[0] and rest[1] == "_history" and all(is_id[2:]):
        letter = "r" if method == "GET" else None
    return (resource_type, letter) if letter is not None else None
