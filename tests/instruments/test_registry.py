"""Definitions load at start-up, and a released version's content never changes under the same number."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.core.errors import NotFound
from app.instruments.registry import (
    DefinitionFileError,
    fingerprint,
    load_registry,
    read_lock,
    record_versions,
    unreleased_changes,
)
from tests.conftest import SCALES_DIR


def test_every_released_definition_matches_its_recorded_fingerprint() -> None:
    registry = load_registry(SCALES_DIR)
    lock = read_lock(SCALES_DIR)

    assert unreleased_changes(registry, lock) == []
    for definition in registry.definitions.values():
        assert lock[definition.id][definition.version] == fingerprint(definition), (
            f"{definition.id} {definition.version} is not recorded: run `python -m app record-scale-versions`"
        )


def test_a_changed_definition_without_a_new_version_is_caught(tmp_path: Path) -> None:
    shutil.copy(SCALES_DIR / "phq9.yaml", tmp_path / "phq9.yaml")
    record_versions(tmp_path, load_registry(tmp_path))
    edited = (tmp_path / "phq9.yaml").read_text().replace("label: mild, lower: 5", "label: mild, lower: 6")
    (tmp_path / "phq9.yaml").write_text(edited)

    changed = load_registry(tmp_path)

    assert unreleased_changes(changed, read_lock(tmp_path)) == ["phq9 1.0.0"]
    with pytest.raises(DefinitionFileError, match="without a new version"):
        record_versions(tmp_path, changed)
    (tmp_path / "phq9.yaml").write_text(edited.replace('version: "1.0.0"', 'version: "1.1.0"'))
    assert set(record_versions(tmp_path, load_registry(tmp_path))["phq9"]) == {"1.0.0", "1.1.0"}


def test_a_broken_definition_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "phq9.yaml").write_text("id: phq9\nversion: 1\n")
    with pytest.raises(DefinitionFileError, match="phq9.yaml"):
        load_registry(tmp_path)
    (tmp_path / "phq9.yaml").write_text("id: [unclosed\n")
    with pytest.raises(DefinitionFileError, match="phq9.yaml"):
        load_registry(tmp_path)


def test_a_definition_must_live_in_the_file_named_by_its_id(tmp_path: Path) -> None:
    shutil.copy(SCALES_DIR / "phq9.yaml", tmp_path / "depression.yaml")
    with pytest.raises(DefinitionFileError, match="does not match"):
        load_registry(tmp_path)


def test_an_empty_scales_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionFileError, match="no instrument definitions"):
        load_registry(tmp_path)


def test_an_unknown_instrument_names_the_known_ones() -> None:
    with pytest.raises(NotFound, match="phq9"):
        load_registry(SCALES_DIR).get("phq8")
