"""schemathesis over the whole OpenAPI schema, as an admin of a fresh clinic: no 5xx, and every response (status,
content type, headers, body) is one the schema documents. A fixed seed makes every run generate the same cases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.auth.permissions import Role
from tests.conftest import ISSUE_PHQ9, new_clinic
from tests.security.clinics import created

SEED = 20261125
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PASSES: list[tuple[str, GenerationMode, int]] = [
    ("positive, with the clinic's own ids", GenerationMode.POSITIVE, 4),
    ("positive", GenerationMode.POSITIVE, 2),
    ("negative", GenerationMode.NEGATIVE, 3),
]
"""(name, mode, cases per operation): about nine cases per operation, a few hundred in all."""
AnyCase = Case[Any]
Send = Callable[[AnyCase], None]


def own_records(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    """A patient with a session and a measurement, so that generated requests also reach real records."""
    patient = created(client.post("/v1/patients", json={"external_id": "MRN-FUZZ"}, headers=admin))["id"]
    therapy_session = created(
        client.post(f"/v1/patients/{patient}/sessions", json={"started_at": "2026-11-20T09:00:00Z"}, headers=admin)
    )["id"]
    measurement = created(
        client.post(
            f"/v1/patients/{patient}/measurements",
            json={"instrument": "phq9", "items": ISSUE_PHQ9, "measured_at": "2026-11-20T09:30:00Z"},
            headers=admin,
        )
    )["id"]
    return {
        "patient_id": patient,
        "session_id": therapy_session,
        "measurement_id": measurement,
        "response_id": measurement,
        "instrument_id": "phq9",
        "instrument": "phq9",
    }


def fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, count: int, fixed: dict[str, str], send: Send
) -> int:
    """Run ``count`` generated cases of one operation: the number run, or the first schemathesis failure."""
    ran = [0]

    @seed(SEED)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def run(case: AnyCase) -> None:
        ran[0] += 1
        send(case)

    with suppress(Unsatisfiable):  # negative cases of an operation with nothing to negate (GET /health)
        run()
    return ran[0]


def summary(failure: BaseException) -> str:
    """The failed checks and the request that shows them, without schemathesis' full schema dumps."""
    lines = str(failure).splitlines()
    kept = [
        line.strip()[:240]
        for line in lines
        if line.startswith("- ST") or line.strip().startswith(("curl ", "Received"))
    ]
    kept += [line.strip() for line in lines if "is not" in line or "Documented" in line][:2]
    return "\n  ".join(kept) or str(failure)[:600]


def test_the_whole_schema_holds_under_generated_requests(
    app: FastAPI, client: TestClient, figures: list[str], backend: str
) -> None:
    admin = new_clinic(app).headers(Role.ADMIN)
    ids = own_records(client, admin)
    schema = schemathesis.openapi.from_dict(app.openapi())
    asgi = ASGIClient(cast(Any, app))  # in-process, without starting another lifespan

    def send(case: AnyCase) -> None:
        response = case.call(base_url="http://testserver", session=asgi, headers=admin)
        case.validate_response(response, checks=CHECKS, headers=admin)

    cases: Counter[str] = Counter()
    failures: dict[str, str] = {}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation in the schema can be tested
        operations.append(result.ok())
    for operation in operations:
        for name, mode, count in PASSES:
            fixed = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
            if name.endswith("own ids") and not fixed:
                continue
            try:
                cases[name] += fuzz(operation, mode, count, fixed, send)
            except (Failure, FailureGroup) as failure:  # collect every operation's failure, then report them all
                cases[name] += count
                failures[f"{operation.label} ({name})"] = summary(failure)

    figures.append(
        f"[{backend}] schemathesis (seed {SEED}): {len(operations)} operations, {cases.total()} cases "
        f"({', '.join(f'{n}: {c}' for n, c in cases.items())}); {len(failures)} operations failing"
    )
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
