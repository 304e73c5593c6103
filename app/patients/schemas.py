from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.core.schemas import Schema

LOCAL_IDENTIFIER_SYSTEM = "urn:compassion-outcomes:external-id"
"""System of the ``external_id`` shorthand: the clinic's own identifier when it names no system."""

Text300 = Annotated[str, Field(min_length=1, max_length=300)]


class Identifier(Schema):
    system: Text300 = Field(description="URI of the identifier's namespace, e.g. the EHR's MRN system.")
    value: Text300


class PatientCreate(Schema):
    external_id: Text300 | None = Field(
        default=None, description=f"The clinic's own identifier (stored with system `{LOCAL_IDENTIFIER_SYSTEM}`)."
    )
    identifiers: list[Identifier] = Field(default=[], max_length=20)


class PatientRead(Schema):
    id: uuid.UUID
    external_id: str | None
    identifiers: list[Identifier]
    created_at: datetime
