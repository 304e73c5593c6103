"""Two kinds of clinic for the security suites: the callers' own, and another clinic full of recognisable records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from tests.auth import smart
from tests.conftest import ISSUE_PHQ9, ClinicKeys, new_clinic
from tests.security.openapi_routes import MEASURED_AT, Route, example_body, example_schedule, fill, fill_body

STAFF = {
    "admin": Role.ADMIN,
    "clinician": Role.CLINICIAN,
    "integration": Role.INTEGRATION,
    "researcher": Role.RESEARCHER,
}
CALLERS: dict[str, Role | None] = {"anonymous": None, **STAFF, "patient": Role.PATIENT, "smart": Role.SMART_CLIENT}
"""Everyone the matrix calls as: no credentials, each staff role, a patient token (a mobile app) and a SMART Backend
Services client's access token with every scope (``system/*.cruds``)."""


def created(response: Any) -> Any:
    """The JSON body of a successful answer."""
    assert response.status_code in (200, 201), response.text
    return response.json()


def enrol(client: TestClient, keys: ClinicKeys, patient_id: str) -> tuple[str, str]:
    """A patient token for the patient (as a phone gets one), and the token's key id."""
    code = created(client.post(f"/v1/patients/{patient_id}/enrolments", json={}, headers=keys.headers()))["code"]
    token = created(client.post("/v1/enrolments/exchange", json={"code": code}))["token"]
    tokens = created(client.get(f"/v1/patients/{patient_id}/tokens", headers=keys.headers()))["items"]
    return token, str(tokens[-1]["id"])


@dataclass
class Callers:
    """A clinic of the callers' own: one key per staff role and a patient token for one of its patients."""

    keys: ClinicKeys
    patient_id: str
    token: str
    smart_token: str

    def headers(self, caller: str) -> dict[str, str]:
        role = CALLERS[caller]
        if role is None:
            return {}
        if role is Role.PATIENT:
            return {"Authorization": f"Bearer {self.token}"}
        if role is Role.SMART_CLIENT:
            return {"Authorization": f"Bearer {self.smart_token}"}
        return self.keys.headers(role)


def callers_clinic(app: FastAPI, client: TestClient) -> Callers:
    keys = new_clinic(app)
    patient_id = created(client.post("/v1/patients", json={}, headers=keys.headers()))["id"]
    token, _ = enrol(client, keys, patient_id)
    smart_client = smart.register(client, keys.headers(Role.ADMIN), ["system/*.cruds"])
    smart_token = smart.access_token(client, smart_client, "system/*.cruds")
    return Callers(keys=keys, patient_id=patient_id, token=token, smart_token=smart_token)


@dataclass
class StockedClinic:
    """A clinic with one record of each kind, whose markers (ids, identifiers, free text) identify its data."""

    keys: ClinicKeys
    known: dict[str, str]
    """Path parameter name → this clinic's id for it."""
    markers: set[str]
    unused_enrolment_code: str
    patient_token: str
    extra_key: str
    discovered: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return self.keys.headers(Role.ADMIN)

    def ids(self, name: str, route: Route) -> list[str]:
        if name == "key_id":
            return [self.known["token_key_id" if "/tokens/" in route.path else "key_id"]]
        if name == "assessment_id" and route.path.startswith("/v1/me/"):
            return [self.known["own_assessment_id"]]  # not the one the clinician's route declines first
        if name in self.known:
            return [self.known[name]]
        if name in self.discovered:
            return [self.discovered[name]]
        # An id of a kind this clinic cannot list or create (a FHIR id, an alert): each of its records in turn.
        return [self.known["patient_id"], self.known["measurement_id"], self.known["session_id"]]

    def discover(self, client: TestClient, schema: dict[str, Any], route: Route, by_path: dict[str, Route]) -> None:
        """Find (or create) this clinic's record for each unknown id parameter, through the collection it is in."""
        for name in route.record_ids:
            if name in self.known or name in self.discovered or name == "key_id":
                continue
            template = route.path[: route.path.index("{" + name + "}")].rstrip("/")
            collection = fill(template, self.known)
            listed = client.get(collection, headers=self.admin)
            items = _items(listed.json()) if listed.status_code == 200 else []
            creator = by_path.get(f"POST {template}")
            if not items and creator is not None:
                body = fill_body(example_body(schema, creator), self.known)
                posted = client.post(collection, json=body, headers=self.admin)
                items = [posted.json()] if posted.status_code in (200, 201) else []
            found = next((str(item["id"]) for item in items if isinstance(item, dict) and "id" in item), None)
            if found is not None:
                self.discovered[name] = found
                self.markers.add(found)

    def filters(self) -> dict[str, str]:
        """Values for the optional query filters: this clinic's patient, key, external identifiers."""
        return {
            "patient_id": self.known["patient_id"],
            "measurement_id": self.known["measurement_id"],
            "session_id": self.known["session_id"],
            "key_id": self.known["key_id"],
            "external_id": self.known["external_id"],
            "identifier": self.known["identifier"],
        }

    def leaked(self, text: str, *, sent: list[str]) -> list[str]:
        """Markers in a response body, once the values the caller itself sent (echoed in problem details) are cut."""
        for value in sorted(sent, key=len, reverse=True):
            text = text.replace(value, "")
        return sorted(marker for marker in self.markers if marker in text)


def _items(body: Any) -> list[Any]:
    """The records of a listing: a page's ``items``, a FHIR Bundle's entries, or a plain list."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return list(body["items"])
    if isinstance(body, dict) and isinstance(body.get("entry"), list):
        return [entry.get("resource") for entry in body["entry"] if isinstance(entry, dict)]
    return list(body) if isinstance(body, list) else []


def stocked_clinic(app: FastAPI, client: TestClient) -> StockedClinic:
    keys = new_clinic(app)
    tag = uuid.uuid4().hex[:10]
    admin = keys.headers(Role.ADMIN)
    identifier = {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": f"EHR-FOREIGN-{tag}"}
    patient = created(
        client.post(
            "/v1/patients", json={"external_id": f"MRN-FOREIGN-{tag}", "identifiers": [identifier]}, headers=admin
        )
    )
    patients = f"/v1/patients/{patient['id']}"
    therapy_session = created(
        client.post(
            f"{patients}/sessions",
            json={"started_at": MEASURED_AT, "episode": f"episode-foreign-{tag}", "label": f"session-foreign-{tag}"},
            headers=admin,
        )
    )
    measurement = created(
        client.post(
            f"{patients}/measurements",
            json={
                "instrument": "phq9",
                "items": ISSUE_PHQ9,
                "measured_at": MEASURED_AT,
                "session_id": therapy_session["id"],
            },
            headers=admin,
        )
    )
    created(
        client.post(
            f"{patients}/measurements/{measurement['id']}/amend",
            json={"items": {**ISSUE_PHQ9, "1": 2}, "reason": f"reason-foreign-{tag}"},
            headers=admin,
        )
    )
    unused = created(client.post(f"{patients}/enrolments", json={}, headers=admin))
    token, token_key_id = enrol(client, keys, patient["id"])
    created(
        client.put(
            "/v1/instruments/phq9/text",
            json={"licence_note": f"licence-foreign-{tag}", "items": {"1": f"wording-foreign-{tag}"}},
            headers=admin,
        )
    )
    extra = created(
        client.post("/v1/api-keys", json={"role": "integration", "label": f"key-foreign-{tag}"}, headers=admin)
    )
    schedule = created(client.post(f"{patients}/schedules", json=example_schedule(["gad7", "phq9"]), headers=admin))
    due = created(client.get(f"{patients}/assessments", params={"status": "due"}, headers=admin))["items"]
    known = {
        "patient_id": patient["id"],
        "measurement_id": measurement["id"],
        "session_id": therapy_session["id"],
        "enrolment_id": unused["id"],
        "schedule_id": schedule["id"],
        "assessment_id": due[0]["id"],
        "own_assessment_id": due[1]["id"],
        "key_id": extra["id"],
        "token_key_id": token_key_id,
        "external_id": f"MRN-FOREIGN-{tag}",
        "identifier": f"{identifier['system']}|{identifier['value']}",
    }
    markers = {
        str(keys.id),
        keys.name,
        *known.values(),
        identifier["value"],
        f"episode-foreign-{tag}",
        f"session-foreign-{tag}",
        f"reason-foreign-{tag}",
        f"licence-foreign-{tag}",
        f"wording-foreign-{tag}",
        f"key-foreign-{tag}",
        unused["code"],
        token,
        extra["key"],
        *keys.keys.values(),
        *(str(key_id) for key_id in keys.key_ids.values()),
    }
    markers.discard(known["identifier"])
    return StockedClinic(
        keys=keys,
        known=known,
        markers=markers,
        unused_enrolment_code=unused["code"],
        patient_token=token,
        extra_key=extra["key"],
    )
