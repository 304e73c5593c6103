"""Mobile apps retry over bad networks: many parallel posts against the real server, the same Idempotency-Key sent
several times at once, from two API keys. Each key stores one measurement, no post is lost, and no client ever sees
a 5xx or "database is locked"."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2

from app.auth.permissions import Role
from tests.conftest import ISSUE_PHQ9, ClinicKeys
from tests.reliability.live_server import LiveServer, stored_measurement_ids

IDEMPOTENCY_KEYS = 40
COPIES = 4
"""Each Idempotency-Key is sent this many times, all in flight together."""
SENDERS = (Role.CLINICIAN, Role.INTEGRATION)
"""An Idempotency-Key belongs to the API key that sent it: the same key from two API keys is two measurements."""
UNKEYED = 40
"""Posts without an Idempotency-Key: each one is a measurement of its own."""
WORKERS = 32
READERS = 4
"""Threads listing the patient's measurements while the posts run."""
RETRIES_AFTER_409 = 50


@dataclass(frozen=True)
class Post:
    sender: Role
    key: str | None
    day: int


@dataclass
class Outcome:
    post: Post
    status: int
    body: str
    measurement_id: str | None
    replayed: bool
    retried: int


class Clients:
    """One connection pool per worker thread, all closed at the end."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.local = threading.local()
        self.opened: list[httpx2.Client] = []
        self.lock = threading.Lock()

    def get(self) -> httpx2.Client:
        client: httpx2.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx2.Client(base_url=self.server.base_url, timeout=60.0)
            with self.lock:
                self.opened.append(client)
        return client

    def close(self) -> None:
        for client in self.opened:
            client.close()


def send(clients: Clients, clinic: ClinicKeys, patient_id: str, post: Post) -> Outcome:
    """Post, and retry a 409 "still in progress" as an app would; a 5xx is returned, never retried."""
    headers = clinic.headers(post.sender, {"Idempotency-Key": post.key} if post.key else None)
    body = {
        "instrument": "phq9",
        "items": ISSUE_PHQ9,
        "measured_at": f"2026-01-01T{post.day // 60:02}:{post.day % 60:02}:00Z",
    }
    retried = 0
    response = clients.get().post(f"/v1/patients/{patient_id}/measurements", json=body, headers=headers)
    while response.status_code == 409 and retried < RETRIES_AFTER_409:
        time.sleep(0.02)
        retried += 1
        response = clients.get().post(f"/v1/patients/{patient_id}/measurements", json=body, headers=headers)
    ok = response.status_code == 201
    return Outcome(
        post=post,
        status=response.status_code,
        body=response.text,
        measurement_id=response.json()["id"] if ok else None,
        replayed=response.headers.get("idempotent-replayed") == "true",
        retried=retried,
    )


def read_while_posting(
    server: LiveServer, clinic: ClinicKeys, patient_id: str, done: threading.Event, reads: Counter[int]
) -> None:
    with httpx2.Client(base_url=server.base_url, timeout=60.0) as client:
        while not done.is_set():
            response = client.get(f"/v1/patients/{patient_id}/measurements", headers=clinic.headers(Role.INTEGRATION))
            reads[response.status_code] += 1


def test_parallel_retries_store_each_measurement_once_and_lose_nothing(
    live_server: LiveServer, live_clinic: ClinicKeys, figures: list[str], backend: str
) -> None:
    patient = httpx2.post(f"{live_server.base_url}/v1/patients", json={}, headers=live_clinic.headers()).json()["id"]
    # The copies of one key are queued next to each other, so they are in flight at the same moment.
    posts = [
        Post(sender, f"retry-{index}", index)
        for index in range(IDEMPOTENCY_KEYS)
        for sender in SENDERS
        for _ in range(COPIES)
    ]
    posts += [Post(Role.CLINICIAN, None, 1000 + index) for index in range(UNKEYED)]

    clients = Clients(live_server)
    done = threading.Event()
    tallies: list[Counter[int]] = [Counter() for _ in range(READERS)]  # one per reader: no shared counting
    readers = [
        threading.Thread(target=read_while_posting, args=(live_server, live_clinic, patient, done, tally))
        for tally in tallies
    ]
    for reader in readers:
        reader.start()
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(pool.map(lambda post: send(clients, live_clinic, patient, post), posts))
    finally:
        done.set()
        for reader in readers:
            reader.join()
        clients.close()

    reads = sum(tallies, Counter[int]())
    assert set(reads) == {200}, reads  # reads (each one audited) during the burst never fail either
    statuses = Counter(outcome.status for outcome in outcomes)
    assert statuses == {201: len(posts)}, [o.body for o in outcomes if o.status != 201][:5]
    assert not [o for o in outcomes if "locked" in o.body.lower()]
    by_key: dict[tuple[Role, str | None], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_key[(outcome.post.sender, outcome.post.key or outcome.measurement_id)].append(outcome)
    for copies in by_key.values():
        assert len({outcome.body for outcome in copies}) == 1  # every copy answered with the first response
        assert sum(not outcome.replayed for outcome in copies) == 1  # exactly one of them stored it
    acknowledged = {str(outcome.measurement_id) for outcome in outcomes}
    stored = stored_measurement_ids(live_server.database_url, patient)
    # 40 keys × 2 API keys + 40 posts without a key = 120 measurements.
    assert len(acknowledged) == IDEMPOTENCY_KEYS * len(SENDERS) + UNKEYED == 120
    assert sorted(stored) == sorted(acknowledged)  # none lost, none twice

    figures.append(
        f"[{backend}] concurrency: {len(posts)} parallel posts ({WORKERS} at a time; "
        f"{IDEMPOTENCY_KEYS} Idempotency-Keys × {len(SENDERS)} API keys × {COPIES} copies, {UNKEYED} without a key): "
        f"{len(acknowledged)} measurements acknowledged, {len(stored)} rows found, "
        f"{sum(o.replayed for o in outcomes)} replays, {sum(o.retried for o in outcomes)} retries after 409, 0 5xx; "
        f"{reads.total()} audited reads alongside, all 200"
    )
