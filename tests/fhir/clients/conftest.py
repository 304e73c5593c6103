"""The FHIR clients of the suite (fhirpy, fhirclient) against the real server: uvicorn serving ``app.asgi:app`` on a
free port and a freshly migrated database of the backend under test, with keys made as the CLI makes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.auth.permissions import Role
from tests.reliability.live_server import LiveServer, clinic_with_keys, fresh_database
from tests.security.openapi_routes import PHQ9_RESPONSE


@dataclass(frozen=True)
class Live:
    base: str
    """The FHIR base URL, ``http://127.0.0.1:<port>/fhir``."""
    key: str
    """An admin key of the live clinic."""


@pytest.fixture(scope="package")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    backend = make_url(database_url).get_backend_name()
    directory = tmp_path_factory.mktemp(f"fhir-clients-{backend}")
    with fresh_database(backend, directory) as url:
        server = LiveServer(database_url=url, log_path=directory / "server.log")
        server.start()
        try:
            keys = clinic_with_keys(url, "fhir clients clinic")
            yield Live(base=f"{server.base_url}/fhir", key=keys.keys[Role.ADMIN])
        finally:
            server.stop()


def phq9_response(patient_id: str, authored: str) -> dict[str, Any]:
    """A completed PHQ-9 answering our own Questionnaire, about the patient."""
    data: dict[str, Any] = json.loads(json.dumps(PHQ9_RESPONSE).replace("{patient_id}", patient_id))
    return {**data, "authored": authored}
