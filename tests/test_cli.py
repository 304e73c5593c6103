"""``python -m app create-api-key`` prints only the key on stdout, and the key works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.core.migrations import upgrade_to_head
from app.main import create_app
from tests.conftest import TEST_PEPPER, make_settings

ROOT = Path(__file__).resolve().parents[1]


def test_create_api_key_prints_only_the_key_and_the_key_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_to_head(url)
    env = {**os.environ, "DATABASE_URL": url, "API_KEY_PEPPER": TEST_PEPPER}

    result = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--clinic", "North Clinic", "--role", "clinician"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )

    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    assert key.startswith("co_")
    assert "cannot be shown again" in result.stderr
    with TestClient(create_app(make_settings(url))) as client:
        assert client.get("/v1/patients", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    result = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--clinic", "X", "--role", "superuser"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )

    assert result.returncode != 0
    assert result.stdout == ""


def test_keys_are_listed_expired_and_revoked_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_to_head(url)
    env = {**os.environ, "DATABASE_URL": url, "API_KEY_PEPPER": TEST_PEPPER}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
        )

    expiring = run("create-api-key", "--clinic", "C", "--role", "admin", "--expires-in-days", "30").stdout.strip()
    doomed = run("create-api-key", "--clinic", "C", "--role", "clinician", "--label", "old feed").stdout.strip()
    listed = run("list-api-keys", "--clinic", "C").stdout.splitlines()
    doomed_id = next(line.split("\t")[0] for line in listed if "old feed" in line)
    run("revoke-api-key", "--clinic", "C", doomed_id)

    with TestClient(create_app(make_settings(url))) as client:
        keys = client.get("/v1/api-keys", headers={"Authorization": f"Bearer {expiring}"}).json()["items"]
        refused = client.get("/v1/patients", headers={"Authorization": f"Bearer {doomed}"})
    assert len(listed) == 2
    assert all(expiring not in line and doomed not in line for line in listed)
    assert refused.status_code == 401
    admin = next(key for key in keys if key["role"] == "admin")
    assert admin["expires_at"] is not None


def test_the_worker_is_for_postgresql_and_says_so_on_sqlite(tmp_path: Path) -> None:
    """On SQLite the app runs its jobs in-process: a worker there would only compete with it."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    result = subprocess.run(
        [sys.executable, "-m", "app", "worker"], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )

    assert result.returncode == 2
    assert "JOBS_IN_PROCESS" in result.stderr


def test_a_researcher_key_is_created_for_a_research_project(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_to_head(url)
    env = {**os.environ, "DATABASE_URL": url, "API_KEY_PEPPER": TEST_PEPPER}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )

    admin = run("create-api-key", "--clinic", "R", "--role", "admin").stdout.strip()
    with TestClient(create_app(make_settings(url))) as client:
        body = {"name": "cft", "purpose": "A study.", "ethics_reference": "REK 1", "consent_model": "opt_in"}
        project = client.post("/v1/research/projects", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert project.status_code == 201, project.text
    without = run("create-api-key", "--clinic", "R", "--role", "researcher")
    unknown = run("create-api-key", "--clinic", "R", "--role", "researcher", "--project", "nothing")
    researcher = run("create-api-key", "--clinic", "R", "--role", "researcher", "--project", "cft")

    assert (without.returncode, without.stdout) == (2, "")
    assert "--project" in without.stderr
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert researcher.returncode == 0, researcher.stderr
    key = researcher.stdout.strip()
    with TestClient(create_app(make_settings(url))) as client:
        listed = client.get("/v1/research/projects", headers={"Authorization": f"Bearer {key}"}).json()
        exported = client.get("/v1/research/export", headers={"Authorization": f"Bearer {key}"})
    assert [entry["id"] for entry in listed] == [project.json()["id"]]
    assert exported.status_code == 200
