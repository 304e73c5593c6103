"""kill -9 the server in the middle of a burst of posts, start it again: every measurement it acknowledged (201) is
there, and the posts cut off by the crash, retried with their Idempotency-Keys, are each stored exactly once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx2

from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.reliability.live_server import LiveServer, stored_measurement_ids

SENDERS = 8
ACKNOWLEDGED_BEFORE_KILL = 60
"""The kill comes once this many posts are acknowledged, while every sender still has one in flight."""


@dataclass
class Burst:
    """What the senders saw: measurement id per acknowledged key, and the keys whose post got no answer."""

    acknowledged: dict[str, str] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)


def body(key: str) -> dict[str, object]:
    minute = int(key.rsplit("-", 1)[1])
    return {
        "instrument": "phq9",
        "items": ISSUE_PHQ9,
        "measured_at": f"2026-02-01T{minute // 60 % 24:02}:{minute % 60:02}:00Z",
    }


def sender(server: LiveServer, clinic: ClinicKeys, patient_id: str, number: int, burst: Burst) -> None:
    """Post measurements one after another until the server is gone."""
    url = f"{server.base_url}/v1/patients/{patient_id}/measurements"
    with httpx2.Client(timeout=30.0) as client:
        for sequence in range(100_000):
            key = f"crash-{number}-{sequence}"
            headers = clinic.headers(extra={"Idempotency-Key": key})
            try:
                response = client.post(url, json=body(key), headers=headers)
            except httpx2.TransportError:
                with burst.lock:
                    burst.unanswered.append(key)
                if burst.killed.is_set():
                    return
                continue
            with burst.lock:
                if response.status_code == 201:
                    burst.acknowledged[key] = response.json()["id"]
                    if len(burst.acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                        burst.enough.set()
                else:
                    burst.refused.append(f"{key}: {response.status_code} {response.text[:200]}")


def test_every_acknowledged_measurement_survives_kill_9(
    live_server: LiveServer, live_clinic: ClinicKeys, figures: list[str], backend: str
) -> None:
    patient = httpx2.post(f"{live_server.base_url}/v1/patients", json={}, headers=live_clinic.headers()).json()["id"]
    burst = Burst()
    senders = [
        threading.Thread(target=sender, args=(live_server, live_clinic, patient, number, burst))
        for number in range(SENDERS)
    ]
    for thread in senders:
        thread.start()
    assert burst.enough.wait(timeout=120), "the burst never reached the kill point"
    live_server.kill()
    burst.killed.set()
    for thread in senders:
        thread.join(timeout=60)
    acknowledged = dict(burst.acknowledged)
    live_server.start()

    found = set(stored_measurement_ids(live_server.database_url, patient))
    missing = set(acknowledged.values()) - found
    with httpx2.Client(base_url=live_server.base_url, timeout=30.0) as client:
        listed = client.get(
            f"/v1/patients/{patient}/measurements", params={"limit": 500}, headers=live_clinic.headers()
        )
        retried = [
            client.post(
                f"/v1/patients/{patient}/measurements",
                json=body(key),
                headers=live_clinic.headers(extra={"Idempotency-Key": key}),
            )
            for key in burst.unanswered
        ]
    after_retries = stored_measurement_ids(live_server.database_url, patient)

    figures.append(
        f"[{backend}] durability: kill -9 during a burst from {SENDERS} senders: "
        f"{len(acknowledged)} posts acknowledged, {len(acknowledged) - len(missing)} found after restart; "
        f"{len(burst.unanswered)} cut off by the kill, "
        f"retried with their keys: {sum(r.status_code == 201 for r in retried)} × 201 "
        f"({sum(r.headers.get('idempotent-replayed') == 'true' for r in retried)} replayed); "
        f"{len(after_retries)} rows for {len(acknowledged) + len(burst.unanswered)} keys"
    )
    assert burst.refused == []
    assert missing == set()
    assert {item["id"] for item in listed.json()["items"]} >= set(acknowledged.values())
    assert [response.status_code for response in retried] == [201] * len(retried)
    # One row per key: acknowledged ones once, and a cut-off post either committed before the kill (its retry is a
    # replay) or not at all (its retry stores it now).
    assert len(after_retries) == len(set(after_retries)) == len(acknowledged) + len(burst.unanswered)
