"""``docker compose up`` starts: the API service is given every setting production requires."""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import SecretStr

from app.core.config import PROJECT_ROOT, Settings


def test_the_compose_api_service_has_every_setting_production_requires() -> None:
    compose: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
    environment: dict[str, str] = compose["services"]["api"]["environment"]
    required = {name for name, value in environment.items() if re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value))}
    given = {
        name: ("https://api.clinic.example" if name == "PUBLIC_BASE_URL" else f"{name}-value") for name in required
    }
    values = {name.lower(): given.get(name, value) for name, value in environment.items()}
    secrets = {
        name: SecretStr(value)
        for name, value in values.items()
        if name in Settings.model_fields and Settings.model_fields[name].annotation is SecretStr
    }

    settings = Settings(_env_file=None, **{**values, **secrets})  # what the operator is asked for is enough

    assert settings.environment == "production"
    assert {"API_KEY_PEPPER", "RESEARCH_PSEUDONYM_KEY", "PUBLIC_BASE_URL"} <= required
