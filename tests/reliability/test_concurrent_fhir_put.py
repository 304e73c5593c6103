"""An EHR integration pushes its patients with ``PUT /fhir/Patient/{id}`` and retries over bad networks, from several
workers at once: identical PUTs of a new id, spread over two server processes on one database, each answer 201
(the one that created it) or 200 (an update of what it created), never a 404, a 409 or a 5xx, and exactly one
patient exists afterwards."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from app.auth.permissions import Role
from tests.conftest import ClinicKeys
from tests.reliability.live_server import LiveServer

COPIES = 12
"""Identical PUTs of one new id, all in flight together (half to each process)."""
ROUNDS = 5
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def second_server(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Another process on the same database, as a second replica behind a load balancer would be."""
    server = LiveServer(database_url=live_server.database_url, log_path=tmp_path_factory.mktemp("second") / "log")
    server.start()
    yield server
    server.stop()


def test_identical_concurrent_puts_of_a_new_patient_answer_201_once_and_200_otherwise(
    live_server: LiveServer, second_server: LiveServer, live_clinic: ClinicKeys, figures: list[str], backend: str
) -> None:
    headers = live_clinic.headers(Role.INTEGRATION, {"Content-Type": FHIR_JSON})
    statuses: Counter[int] = Counter()
    with (
        httpx2.Client(base_url=live_server.base_url, timeout=60.0) as first,
        httpx2.Client(base_url=second_server.base_url, timeout=60.0) as second,
        ThreadPoolExecutor(max_workers=COPIES) as pool,
    ):
        for _ in range(ROUNDS):
            patient_id = str(uuid.uuid4())
            body = {
                "resourceType": "Patient",
                "id": patient_id,
                "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": f"MRN-{patient_id[:8]}"}],
            }
            url = f"/fhir/Patient/{patient_id}"
            clients = [(first, second)[n % 2] for n in range(COPIES)]
            answers = list(
                pool.map(lambda client, url=url, body=body: client.put(url, json=body, headers=headers), clients)
            )
            for answer in answers:
                statuses[answer.status_code] += 1
                assert answer.status_code in (200, 201), answer.text
            assert [answer.status_code for answer in answers].count(201) == 1
            read = first.get(url, headers=headers)
            assert read.status_code == 200, read.text
            assert read.json()["identifier"] == body["identifier"]

    figures.append(
        f"[{backend}] concurrent FHIR PUT of a new Patient: {ROUNDS} ids × {COPIES} identical PUTs over two "
        f"processes, statuses {dict(sorted(statuses.items()))}"
    )
