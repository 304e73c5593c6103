"""Domain errors render once, as RFC 9457 problem+json, with the headers their status calls for."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.errors import Busy
from app.core.problems import install_problem_handlers


def test_busy_is_a_503_problem_that_says_when_to_retry() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/write")
    async def write() -> None:
        raise Busy("other writes kept the database busy; retry shortly (nothing was stored)")

    answer = TestClient(app).post("/write")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Busy: retry shortly"
