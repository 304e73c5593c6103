"""The clinician report in a real headless Chromium (Debian's), served by a real uvicorn process.

A seeded patient with PHQ-9, FCS (from others) and SCS-SF series: every chart renders with the right number of
points, nothing is fetched from anywhere else, and screenshots (screen and print) are saved under test-artifacts/.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Request, Route, sync_playwright

from app.auth.permissions import Role
from app.core.datetimes import CLOCK
from app.core.db import transaction
from app.core.migrations import upgrade_to_head
from app.core.state import state_of
from app.main import create_app
from app.patients import service as patients
from app.patients.schemas import PatientCreate
from tests.clinical.conftest import day, fcs_from_others, phq9, scs_sf, seed
from tests.conftest import TEST_PEPPER, ClinicKeys, make_settings, new_clinic

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
EXPECTED_POINTS = {"phq9": 5, "fcs_from_others": 3, "scs_sf": 4}


@dataclass(frozen=True)
class Served:
    base_url: str
    clinic: ClinicKeys
    patient_id: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seed_patient(database_url: str) -> tuple[ClinicKeys, str]:
    """A clinic, a patient and three weekly series, written straight into the migrated database."""
    app = create_app(make_settings(database_url))
    with TestClient(app):
        clinic = new_clinic(app)
        for db in transaction(state_of(app).write_sessions):
            patient = patients.create(db, clinic_id=clinic.id, data=PatientCreate(external_id="MRN-BROWSER"))
            patient_id = str(patient.id)
        for week, (total, item9) in enumerate(((21, 2), (17, 0), (14, 1), (9, 0), (5, 0))):
            seed(app, clinic, patient_id, "phq9", phq9(total, item9=item9), day(7 * week))
        for week, total in enumerate((44, 36, 25)):
            seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(total), day(7 * week + 1))
        for week, (positive, negative) in enumerate(((2, 4), (2, 3), (3, 3), (4, 2))):
            seed(app, clinic, patient_id, "scs_sf", scs_sf(positive, negative), day(7 * week + 1))
    return clinic, patient_id


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path / 'browser.db'}"
    upgrade_to_head(database_url)
    clinic, patient_id = seed_patient(database_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "API_KEY_PEPPER": TEST_PEPPER, "ENVIRONMENT": "test"}
    log_path = tmp_path / "uvicorn.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base_url, server, log_path)
        yield Served(base_url=base_url, clinic=clinic, patient_id=patient_id)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def wait_until_serving(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:  # noqa: S310 - local test server
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not start serving in time:\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.mark.browser
def test_the_report_renders_every_chart_with_its_points_in_chromium(served: Served) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    blocked: list[str] = []
    errors: list[str] = []

    def only_our_server(route: Route, request: Request) -> None:
        if request.url.startswith(served.base_url):
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1100, "height": 900},
            extra_http_headers={"Authorization": f"Bearer {served.clinic.keys[Role.CLINICIAN]}"},
        )
        page = context.new_page()
        page.route("**/*", only_our_server)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

        response = page.goto(f"{served.base_url}/v1/patients/{served.patient_id}/report", wait_until="load")

        assert response is not None
        assert response.status == 200
        figures = page.locator("figure.chart")
        assert [figures.nth(i).get_attribute("data-instrument") for i in range(figures.count())] == list(
            EXPECTED_POINTS
        )
        for instrument, expected in EXPECTED_POINTS.items():
            chart = page.locator(f"#figure-{instrument} svg")
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 500
            assert box["height"] > 150
            markers = page.locator(f"#chart-{instrument}-points-total use")
            assert markers.count() == expected, instrument
            for index in range(expected):
                marker_box = markers.nth(index).bounding_box()
                assert marker_box is not None, f"{instrument} point {index} is not drawn"
                assert marker_box["width"] > 0
            assert page.locator(f"#figure-{instrument} table.chart-data tbody tr").count() == expected
            title = page.locator(f"#chart-{instrument}-title")
            assert title.count() == 1
        # PHQ-9 item 9 was endorsed at weeks 0 and 2: two risk markers above the chart, and two alerts listed.
        assert page.locator("#chart-phq9-flags-risk use").count() == 2
        assert page.locator("#alerts tr.alert").count() == 2
        assert page.get_by_role("img", name="PHQ-9 total score").count() == 1
        page.screenshot(path=str(ARTIFACTS / "clinical-report.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(ARTIFACTS / "clinical-report-print.png"), full_page=True)
        page.pdf(path=str(ARTIFACTS / "clinical-report.pdf"), format="A4")
        browser.close()

    assert blocked == []
    assert errors == []
    assert (ARTIFACTS / "clinical-report.png").stat().st_size > 10_000


LINK_NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
"""The controlled clock of the report-link test: four weeks after the seeded course began."""


@contextmanager
def serving_in_process(database_url: str) -> Iterator[str]:
    """The app served by uvicorn in a thread of this process, so the test's controlled clock (``CLOCK``) is the
    server's."""
    port = free_port()
    app = create_app(make_settings(database_url, public_base_url=f"http://127.0.0.1:{port}"))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start serving in time")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def call(base_url: str, method: str, path: str, key: str, body: dict[str, object]) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - the local test server
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local test server
        answer: dict[str, str] = json.loads(response.read())
        return answer


@pytest.mark.browser
def test_a_report_link_opens_in_chromium_without_a_key_in_local_time_until_it_expires_or_is_revoked(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'links.db'}"
    upgrade_to_head(database_url)
    clinic, patient_id = seed_patient(database_url)
    admin, clinician = clinic.keys[Role.ADMIN], clinic.keys[Role.CLINICIAN]
    with CLOCK.frozen_at(LINK_NOW), serving_in_process(database_url) as base_url:
        call(base_url, "PUT", "/v1/clinic/settings", admin, {"timezone": "Europe/Oslo"})
        links = f"/v1/patients/{patient_id}/report-links"
        expiring = call(base_url, "POST", links, clinician, {"valid_minutes": 10})
        revoked = call(base_url, "POST", links, clinician, {"valid_minutes": 60})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()  # no key at all

            opened = page.goto(expiring["url"], wait_until="load")

            assert opened is not None
            assert opened.status == 200
            assert page.locator(".identifier").inner_text() == "MRN-BROWSER"
            assert patient_id not in page.content()
            # The first PHQ-9 was measured at 09:00 UTC on 5 January: 10:00 in Oslo (CET, UTC+1).
            assert (
                page.locator("#figure-phq9 table.chart-data tbody tr")
                .first.inner_text()
                .startswith("2026-01-05 10:00 +01:00")
            )
            assert "Times are in Europe/Oslo" in page.locator("#patient").inner_text()
            assert "2026-02-02 13:10 +01:00" in page.locator("#link-notice").inner_text()
            assert page.locator("figure.chart").count() == 3
            page.screenshot(path=str(ARTIFACTS / "report-link.png"), full_page=True)

            call(base_url, "POST", f"{links}/{revoked['id']}/revoke", clinician, {})
            refused = page.goto(revoked["url"])
            assert refused is not None
            assert refused.status == 410
            assert "revoked" in page.content()

            CLOCK.move_to(LINK_NOW + timedelta(minutes=10))
            expired = page.goto(expiring["url"])
            assert expired is not None
            assert expired.status == 410
            assert "expired" in page.content()
            assert "MRN-BROWSER" not in page.content()
            browser.close()
