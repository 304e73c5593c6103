"""Versions over HTTP, as FHIR has them: every read answers ``ETag: W/"<versionId>"`` (the resource's
``meta.versionId``), ``If-None-Match`` on a read answers 304 when the client's copy is current, ``If-Match`` on an
update answers 412 unless it names the current version, and a write's ``Location`` is absolute and names the version.

Stored resources (QuestionnaireResponses, registered Questionnaires) count their versions (1, 2, …); an
Observation's version is its measurement's. What is derived rather than stored (our instruments' Questionnaires,
Patients, Tasks) has a *content version*: a digest of the resource as served, which changes exactly when the
resource does (``content_version``). Such versions are not kept, so they can be read back only while current.

The ``If-Match`` check is atomic with the write: the update locks the stored row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write transactions begin ``IMMEDIATE``, one at a time) before it compares versions, so of two
clients updating the same version one wins and the other gets 412, never a silent overwrite.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel

from app.fhir.codes import FHIR_ID
from app.fhir.errors import Issue, PreconditionFailed
from app.fhir.http import FHIRResponse, fhir_response

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=200, description='Update only if this is the current version: `W/"<vid>"`.'),
]
VersionId = Annotated[
    str, Path(pattern=f"^{FHIR_ID.pattern}$", description="A version id, as `meta.versionId` gives it.")
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=500,
        description='304 Not Modified if the resource is still at one of these versions (`W/"<vid>"`, or `*`).',
    ),
]


def etag(version: str) -> str:
    return f'W/"{version}"'


def versions_named(header: str) -> set[str] | None:
    """The versions an ``If-Match``/``If-None-Match`` header names (``W/"3"``, ``"3"`` or a bare ``3``, comma
    separated); None for ``*`` (any version)."""
    names: set[str] = set()
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return None
        tag = tag.removeprefix("W/").removeprefix("w/").strip('"')
        if tag:
            names.add(tag)
    return names


def require_version(if_match: str | None, current: str | None, what: str) -> None:
    """412 unless ``If-Match`` (when sent) names the current version; a resource that does not exist has none."""
    if if_match is None:
        return
    wanted = versions_named(if_match)
    if current is not None and (wanted is None or current in wanted):
        return
    detail = (
        f"{what} does not exist, so If-Match: {if_match} cannot match"
        if current is None
        else f"{what} is at version {current}, not {if_match}: it changed since it was read; read it again and "
        "reapply the change"
    )
    raise PreconditionFailed(detail, issues=[Issue("conflict", f"{detail}; nothing was stored")])


def read_answer(resource: FHIRResourceModel | dict[str, Any], version: str, if_none_match: str | None) -> FHIRResponse:
    """A read's answer: the resource with its ETag, or 304 (no body) when ``If-None-Match`` names its version."""
    headers = {"ETag": etag(version)}
    if if_none_match is not None:
        named = versions_named(if_none_match)
        if named is None or version in named:
            return FHIRResponse(status_code=304, headers=headers)
    return fhir_response(resource, headers=headers)


def version_of(resource: FHIRResourceModel | dict[str, Any]) -> str:
    """``meta.versionId`` of a resource that has one."""
    meta = resource.get("meta") if isinstance(resource, dict) else getattr(resource, "meta", None)
    version = meta.get("versionId") if isinstance(meta, dict) else getattr(meta, "versionId", None)
    assert isinstance(version, str), "every resource served has a meta.versionId"
    return version
