"""Settings that cannot be used stop the service, naming the fields and never repeating a value (it may be a secret)."""

from __future__ import annotations

import traceback

import pytest
from pydantic import SecretStr

from app.core.config import DEVELOPMENT_PUBLIC_BASE_URL, Settings, SettingsError

SECRET = "s3cr3t-Do-Not-Print"


def refusal(**values: object) -> str:
    with pytest.raises(SettingsError) as refused:
        Settings(**values)
    return "".join(traceback.format_exception(refused.value))


def test_a_settings_error_never_shows_a_value() -> None:
    text = refusal(
        environment=f"prod-{SECRET}",
        db_pool_size=SECRET,
        public_base_url=f"ftp://{SECRET}@example.test",
        api_key_pepper=SecretStr(SECRET),
    )

    assert SECRET not in text
    assert "ENVIRONMENT:" in text
    assert "DB_POOL_SIZE:" in text
    assert "PUBLIC_BASE_URL:" in text


def test_a_production_refusal_never_shows_the_other_settings() -> None:
    text = refusal(
        environment="production",
        database_url=f"postgresql+psycopg://outcomes:{SECRET}@db/outcomes",
        api_key_pepper=SecretStr(SECRET + "-pepper"),
    )

    assert SECRET not in text
    assert "RESEARCH_PSEUDONYM_KEY must be set" in text


def test_a_list_setting_that_does_not_parse_names_its_field_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", f"[{SECRET}")

    text = refusal()

    assert SECRET not in text
    assert "cors_origins" in text


def test_production_needs_the_services_https_address() -> None:
    secrets = {
        "environment": "production",
        "api_key_pepper": SecretStr("a-real-pepper"),
        "research_pseudonym_key": SecretStr("a-real-key"),
        "webhook_signing_key": SecretStr("a-real-signing-key"),
    }

    assert "PUBLIC_BASE_URL must be set" in refusal(**secrets)
    assert "PUBLIC_BASE_URL must be set" in refusal(**secrets, public_base_url="http://api.clinic.example")
    assert Settings(**secrets, public_base_url="https://api.clinic.example/").public_base == (
        "https://api.clinic.example"
    )
    assert Settings(environment="development").public_base == DEVELOPMENT_PUBLIC_BASE_URL
