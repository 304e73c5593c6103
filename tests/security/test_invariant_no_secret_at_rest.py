"""Invariant: no secret at rest. After a flow that issues every kind of secret the service hands out (staff API keys
through the API, with and without an Idempotency-Key, and through the CLI; enrolment codes; the patient tokens they
become; webhook signing secrets) and replays the idempotent requests, no issued secret appears in any column of any
table, nor in anything logged while it ran.

The routes that hand out a secret are read from the OpenAPI schema (a success response with a field marked
``x-shown-once``, see ``app.core.schemas.shown_once``): each must have an issuer below, so a new one cannot be missed,
and an issuer runs when its route is one of them. Searched for: each secret, its part after a public prefix
(``co_<prefix>_``, ``whsec_``), an enrolment code without hyphens, a base64 secret's bytes as hex; in every column of
every table reflected from the database (bytes also as hex and base64, JSON as text), in every log record of the
root logger at DEBUG, in what reached stdout/stderr, and in the CLI's messages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, MetaData, select

from app.auth.permissions import Role
from app.auth.smart_tokens import TOKEN_PATH
from app.core.schemas import SHOWN_ONCE
from app.core.state import state_of
from tests.auth import smart
from tests.conftest import TEST_PEPPER, ClinicKeys, new_clinic
from tests.security.openapi_routes import routes

ROOT = Path(__file__).resolve().parents[2]
SHORTEST_NEEDLE = 12
"""Every value searched for is at least this long (random), so a match is never a coincidence."""
PUBLIC_WEBHOOK = "https://93.184.215.14/hooks/outcomes"
"""A public address literal: accepted without a name lookup; no alert is raised here, so nothing is sent to it."""


@dataclass(frozen=True)
class Issued:
    kind: str
    value: str

    def needles(self) -> set[str]:
        """The secret and its secret part: without a public prefix (``co_<prefix>_``, ``smart_<prefix>_``,
        ``whsec_``), without the separators of an enrolment code, and the bytes of a base64 secret as hex."""
        found = {self.value}
        if self.value.startswith(("co_", "smart_")):
            found.add(self.value.split("_", 2)[2])
        if self.value.startswith("whsec_"):
            raw = self.value.removeprefix("whsec_")
            found.add(raw)
            with contextlib.suppress(binascii.Error, ValueError):
                found.add(base64.b64decode(raw, validate=True).hex())
        if self.kind == "enrolment code":
            found.add(self.value.replace("-", ""))
        if self.kind == "report link":
            found.add(self.value.rsplit("/", 1)[1])
        return found


@dataclass
class Flow:
    app: FastAPI
    client: TestClient
    database_url: str
    clinic: ClinicKeys
    patient_id: str
    issued: list[Issued] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    """Enrolment codes not yet exchanged (the token issuer spends them)."""
    replays: int = 0
    other_output: list[str] = field(default_factory=list)
    """What ran outside this process wrote as messages (the CLI's stderr)."""

    @property
    def admin(self) -> dict[str, str]:
        return self.clinic.headers(Role.ADMIN)

    def keep(self, kind: str, value: Any) -> str:
        assert isinstance(value, str), f"{kind}: {value!r}"
        self.issued.append(Issued(kind, value))
        return value

    def idempotent(self, method: str, path: str, *, json_body: Any = None, kind: str, field_name: str) -> None:
        """Issue a secret with an Idempotency-Key, then retry: the retry is refused and repeats no secret."""
        headers = self.clinic.headers(Role.ADMIN, {"Idempotency-Key": f"secret-{uuid.uuid4()}"})
        first = self.client.request(method, path, json=json_body, headers=headers)
        assert first.status_code == 201, first.text
        secret = self.keep(kind, first.json()[field_name])
        if field_name == "code":
            self.codes.append(secret)
        replay = self.client.request(method, path, json=json_body, headers=headers)
        self.replays += 1
        assert replay.status_code == 409, replay.text
        assert replay.json()["type"] == "/problems/secret-not-replayable"
        assert secret not in replay.text


def created(response: Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def staff_api_keys(flow: Flow) -> None:
    project = {"name": "secrets", "purpose": "A study.", "ethics_reference": "REK 1", "consent_model": "opt_in"}
    project_id = created(flow.client.post("/v1/research/projects", json=project, headers=flow.admin))["id"]
    for body in ({"role": "clinician"}, {"role": "researcher", "research_project_id": project_id}):
        flow.keep("API key", created(flow.client.post("/v1/api-keys", json=body, headers=flow.admin))["key"])
    flow.idempotent("POST", "/v1/api-keys", json_body={"role": "integration"}, kind="API key", field_name="key")


def enrolment_codes(flow: Flow) -> None:
    path = f"/v1/patients/{flow.patient_id}/enrolments"
    code = flow.keep("enrolment code", created(flow.client.post(path, json={}, headers=flow.admin))["code"])
    flow.codes.append(code)
    flow.idempotent("POST", path, json_body={}, kind="enrolment code", field_name="code")


def patient_tokens(flow: Flow) -> None:
    for code in flow.codes:
        retried = {"Idempotency-Key": f"exchange-{uuid.uuid4()}"}  # not a guarded route: the header changes nothing
        exchanged = created(flow.client.post("/v1/enrolments/exchange", json={"code": code}, headers=retried))
        flow.keep("patient token", exchanged["token"])
    flow.codes.clear()


def first_webhook_secret(flow: Flow) -> None:
    written = created(flow.client.put("/v1/clinic/settings", json={"webhook_url": PUBLIC_WEBHOOK}, headers=flow.admin))
    flow.keep("webhook signing secret", written["webhook_secret"])


def rotated_webhook_secrets(flow: Flow) -> None:
    if not created(flow.client.get("/v1/clinic/settings", headers=flow.admin)).get("webhook_url"):
        first_webhook_secret(flow)
    rotated = created(flow.client.post("/v1/clinic/webhook-secret", headers=flow.admin))
    flow.keep("webhook signing secret", rotated["secret"])
    flow.idempotent("POST", "/v1/clinic/webhook-secret", kind="webhook signing secret", field_name="secret")


def report_links(flow: Flow) -> None:
    """A report link's URL holds its token; it is used once (its page) so that whatever that path logs is captured."""
    path = f"/v1/patients/{flow.patient_id}/report-links"
    url = flow.keep("report link", created(flow.client.post(path, json={}, headers=flow.admin))["url"])
    client_log = logging.getLogger("httpx2")  # the test client's own log names each URL it fetches: not the service's
    level = client_log.level
    client_log.setLevel(logging.WARNING)
    try:
        assert flow.client.get("/v1/report-links/" + url.rsplit("/", 1)[1]).status_code == 200
    finally:
        client_log.setLevel(level)
    flow.idempotent("POST", path, json_body={}, kind="report link", field_name="url")


def smart_access_tokens(flow: Flow) -> None:
    """A SMART client registered with its public keys gets access tokens with assertions signed RS384 and ES384."""
    client_id = smart.register(flow.client, flow.admin, ["system/Observation.rs"])
    for alg in ("RS384", "ES384"):
        flow.keep("SMART access token", smart.access_token(flow.client, client_id, "system/Observation.rs", alg=alg))


ISSUERS: dict[tuple[str, str], Callable[[Flow], None]] = {
    ("POST", "/v1/api-keys"): staff_api_keys,
    ("POST", "/v1/patients/{patient_id}/enrolments"): enrolment_codes,
    ("POST", "/v1/patients/{patient_id}/report-links"): report_links,
    ("POST", "/v1/enrolments/exchange"): patient_tokens,
    ("PUT", "/v1/clinic/settings"): first_webhook_secret,
    ("POST", "/v1/clinic/webhook-secret"): rotated_webhook_secrets,
    ("POST", TOKEN_PATH): smart_access_tokens,
}
"""Per route that hands out a secret, how the flow makes it do so (in this order: codes before their exchange). An
issuer runs when its route's success response marks a field ``x-shown-once``."""
EVERY_TIME = {"API key", "API key (CLI)", "enrolment code", "patient token", "SMART access token", "report link"}
"""Kinds of secret the flow must always have issued (so an issuer cannot drop out unnoticed)."""


def cli_api_key(flow: Flow) -> None:
    env = {**os.environ, "DATABASE_URL": flow.database_url, "API_KEY_PEPPER": TEST_PEPPER}
    result = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--clinic", flow.clinic.name, "--role", "clinician"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    flow.keep("API key (CLI)", result.stdout.strip())
    flow.other_output.append(result.stderr)


def use_every_secret(flow: Flow) -> None:
    """Authenticate with each key and token once, right and wrong, so whatever the auth path logs is captured."""
    for issued in flow.issued:
        if issued.kind in ("API key", "API key (CLI)", "patient token"):
            path = "/v1/instruments"  # every role may read it
            assert flow.client.get(path, headers={"Authorization": f"Bearer {issued.value}"}).status_code == 200
            wrong = issued.value[:-1] + ("A" if issued.value[-1] != "A" else "B")
            assert flow.client.get(path, headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
        if issued.kind == "SMART access token":
            path, search = "/fhir/Observation", {"subject": f"Patient/{flow.patient_id}"}
            granted = flow.client.get(path, params=search, headers={"Authorization": f"Bearer {issued.value}"})
            assert granted.status_code == 200, granted.text
            wrong = issued.value[:-1] + ("A" if issued.value[-1] != "A" else "B")
            refused = flow.client.get(path, params=search, headers={"Authorization": f"Bearer {wrong}"})
            assert refused.status_code == 401


def secret_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Routes whose success response has a field marked ``x-shown-once`` in the OpenAPI schema."""
    components = app.openapi().get("components", {}).get("schemas", {})
    found = set()
    for route in routes(app):
        for status, response in route.operation.get("responses", {}).items():
            if not str(status).startswith("2"):
                continue
            for content in response.get("content", {}).values():
                if _marks_a_secret(content.get("schema", {}), components):
                    found.add((route.method, route.path))
    return found


def _marks_a_secret(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return name not in seen and _marks_a_secret(components.get(name, {}), components, seen | {name})
    if any(spec.get(SHOWN_ONCE) is True for spec in schema.get("properties", {}).values()):
        return True
    parts = [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(_marks_a_secret(part, components, seen) for part in parts)


@dataclass
class Dump:
    tables: int = 0
    columns: int = 0
    rows: int = 0
    text: dict[tuple[str, str], str] = field(default_factory=dict)
    """(table, column) → every value of that column, as text, one per line."""


def cell_texts(value: Any) -> Iterable[str]:
    """A stored value as text, in every form a secret could take in it."""
    if value is None:
        return ()
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        return (
            raw.hex(),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            raw.decode("latin-1"),
        )
    if isinstance(value, dict | list):
        return (json.dumps(value, ensure_ascii=False, default=str), str(value))
    return (str(value),)


def dump_database(engine: Engine) -> Dump:
    """Every column of every table (reflected from the database, not the models), every row, as text."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    dump = Dump(tables=len(metadata.tables))
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            dump.columns += len(table.columns)
            texts: dict[str, list[str]] = {column.name: [] for column in table.columns}
            for row in connection.execute(select(table)):
                dump.rows += 1
                for column, value in zip(table.columns, row, strict=True):
                    texts[column.name].extend(cell_texts(value))
            for name, values in texts.items():
                dump.text[(table.name, name)] = "\n".join(values)
    return dump


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        texts.append(repr({key: value for key, value in vars(record).items() if key not in ("msg", "args")}))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def test_no_issued_secret_is_stored_or_logged(
    app: FastAPI,
    client: TestClient,
    database_url: str,
    backend: str,
    figures: list[str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    clinic = new_clinic(app)
    patient_id = created(client.post("/v1/patients", json={}, headers=clinic.headers()))["id"]
    flow = Flow(app=app, client=client, database_url=database_url, clinic=clinic, patient_id=patient_id)
    for key in clinic.keys.values():  # issued by the service directly, as the suite's fixtures do
        flow.keep("API key", key)
    handing_out = secret_routes(app)

    uncovered = handing_out - ISSUERS.keys()
    assert not uncovered, f"routes that hand out a secret with no issuer in this invariant: {sorted(uncovered)}"
    for route, issuer in ISSUERS.items():
        if route in handing_out:
            issuer(flow)
    cli_api_key(flow)
    use_every_secret(flow)
    captured = capfd.readouterr()

    needles = {needle: issued for issued in flow.issued for needle in issued.needles()}
    assert all(len(needle) >= SHORTEST_NEEDLE for needle in needles), sorted(needles, key=len)[:3]
    assert len({issued.value for issued in flow.issued}) == len(flow.issued)
    dump = dump_database(state_of(app).engine)
    at_rest = sorted(
        {
            f"{issued.kind} in {table}.{column}"
            for (table, column), text in dump.text.items()
            for needle, issued in needles.items()
            if needle in text
        }
    )
    logs = [*log_texts(caplog), captured.out, captured.err, *flow.other_output]
    logged = sorted(
        {f"{issued.kind} in the logs" for needle, issued in needles.items() if any(needle in t for t in logs)}
    )

    kinds = sorted({issued.kind for issued in flow.issued})
    figures.append(
        f"[{backend}] no secret at rest: {len(flow.issued)} secrets issued ({', '.join(kinds)}; "
        f"{flow.replays} idempotent replays refused), {len(needles)} values searched in "
        f"{dump.tables} tables × {dump.columns} columns ({dump.rows} rows) and {len(caplog.records)} log records; "
        f"{len(at_rest) + len(logged)} found"
    )
    idle = sorted(" ".join(route) for route in ISSUERS.keys() - handing_out)
    if idle:
        figures.append(f"[{backend}]   issuers not run (their route hands out no secret in this app): {idle}")
    assert set(kinds) >= EVERY_TIME, kinds
    assert not at_rest, at_rest
    assert not logged, logged
