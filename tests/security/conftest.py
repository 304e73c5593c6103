"""Fixtures of the security suites, and their figures (printed in the terminal summary, so CI logs show them)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> list[str]:
    """Lines a suite reports: routes × roles covered, cases generated, inputs refused."""
    return request.config.stash.setdefault(FIGURES, [])


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("security figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def http(app: FastAPI, client: TestClient) -> TestClient:
    """A client that sees a server error as a 500 response, as a real client would, instead of an exception.

    It shares the app (and its lifespan, which ``client`` runs and ends) with the ``client`` fixture.
    """
    return TestClient(app, raise_server_exceptions=False)
