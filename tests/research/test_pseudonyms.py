"""Pseudonyms: keyed, stable per project, unlinkable across projects, and revealing no id."""

from __future__ import annotations

import string
import uuid

import pytest
from pydantic import SecretStr

from app.core.config import DEVELOPMENT_RESEARCH_KEY, Settings
from app.research.pseudonyms import Pseudonymiser

SECRET = "server-secret"
CLINIC = uuid.UUID("6f1c2a9e-0000-4000-8000-000000000001")
PATIENT = uuid.UUID("0b6f7d1e-1111-4111-8111-111111111111")


def pseudonym(secret: str = SECRET, project: str = "default", patient: uuid.UUID = PATIENT) -> str:
    return Pseudonymiser(secret=secret, project=project, clinic_id=CLINIC)(patient)


def test_a_pseudonym_is_16_lower_case_base32_characters_and_stable() -> None:
    first = pseudonym()

    assert len(first) == 16
    assert set(first) <= set(string.ascii_lowercase + "234567")
    assert pseudonym() == first


def test_pseudonyms_change_with_the_project_the_secret_and_the_patient() -> None:
    base = pseudonym()

    assert pseudonym(project="trial-b") != base
    assert pseudonym(secret="another-secret") != base
    assert pseudonym(patient=uuid.uuid4()) != base


def test_a_pseudonym_contains_no_part_of_the_ids() -> None:
    value = pseudonym()

    for identifier in (str(PATIENT), PATIENT.hex, str(CLINIC), CLINIC.hex):
        for start in range(0, len(identifier) - 6):
            assert identifier[start : start + 6] not in value


def test_production_refuses_the_development_research_key() -> None:
    pepper = SecretStr("a-real-pepper")

    with pytest.raises(ValueError, match="RESEARCH_PSEUDONYM_KEY"):
        Settings(
            environment="production", api_key_pepper=pepper, research_pseudonym_key=SecretStr(DEVELOPMENT_RESEARCH_KEY)
        )
    settings = Settings(
        environment="production",
        api_key_pepper=pepper,
        research_pseudonym_key=SecretStr("a-real-key"),
        webhook_signing_key=SecretStr("a-real-signing-key"),
        public_base_url="https://api.clinic.example",
    )
    assert settings.environment == "production"
