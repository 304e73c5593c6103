"""Fixtures of the reliability suites: one real server process per backend, shared by the package's modules, and the
figures they report (printed in the terminal summary, so CI logs show them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ClinicKeys
from tests.reliability.live_server import LiveServer, clinic_with_keys, fresh_database

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> list[str]:
    """Lines a suite reports: posts acknowledged against rows found, cases generated."""
    return request.config.stash.setdefault(FIGURES, [])


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture(scope="package")
def live_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn serving ``app.asgi:app`` on a freshly migrated database of the backend under test."""
    directory = tmp_path_factory.mktemp(f"live-{backend}")
    with fresh_database(backend, directory) as url:
        server = LiveServer(database_url=url, log_path=directory / "server.log")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="package")
def live_clinic(live_server: LiveServer) -> ClinicKeys:
    return clinic_with_keys(live_server.database_url, "reliability clinic")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
