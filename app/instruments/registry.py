"""Load and validate every instrument definition in ``scales/`` once, at start-up."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.core.errors import NotFound
from app.scoring.definition import InstrumentDefinition


class DefinitionFileError(ValueError):
    """A file in ``scales/`` is not a valid instrument definition; the service refuses to start."""


@dataclass(frozen=True)
class InstrumentRegistry:
    definitions: dict[str, InstrumentDefinition]

    def get(self, instrument_id: str) -> InstrumentDefinition:
        definition = self.definitions.get(instrument_id)
        if definition is None:
            known = ", ".join(sorted(self.definitions))
            raise NotFound(f"unknown instrument {instrument_id!r}; known instruments: {known}")
        return definition

    def ids(self) -> list[str]:
        return sorted(self.definitions)


def load_definition(path: Path) -> InstrumentDefinition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        definition = InstrumentDefinition.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        raise DefinitionFileError(f"{path.name}: {exc}") from exc
    if definition.id != path.stem:
        raise DefinitionFileError(f"{path.name}: id {definition.id!r} does not match the file name")
    return definition


def load_registry(scales_dir: Path) -> InstrumentRegistry:
    paths = sorted(scales_dir.glob("*.yaml"))
    if not paths:
        raise DefinitionFileError(f"no instrument definitions found in {scales_dir}")
    return InstrumentRegistry(definitions={path.stem: load_definition(path) for path in paths})


LOCK_FILE = "versions.lock.json"
"""Fingerprints of every released definition version: a changed definition must get a new version."""


def fingerprint(definition: InstrumentDefinition) -> str:
    canonical = json.dumps(definition.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_lock(scales_dir: Path) -> dict[str, dict[str, str]]:
    path = scales_dir / LOCK_FILE
    if not path.exists():
        return {}
    lock: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return lock


def unreleased_changes(registry: InstrumentRegistry, lock: dict[str, dict[str, str]]) -> list[str]:
    """Definitions whose content differs from what was recorded for their version (the version must be bumped)."""
    return [
        f"{definition.id} {definition.version}"
        for definition in registry.definitions.values()
        if definition.version in lock.get(definition.id, {})
        and lock[definition.id][definition.version] != fingerprint(definition)
    ]


def record_versions(scales_dir: Path, registry: InstrumentRegistry) -> dict[str, dict[str, str]]:
    """Add each definition's current version to the lock; refuse if a recorded version's content changed."""
    lock = read_lock(scales_dir)
    changed = unreleased_changes(registry, lock)
    if changed:
        raise DefinitionFileError(f"content changed without a new version: {', '.join(changed)}")
    for definition in registry.definitions.values():
        lock.setdefault(definition.id, {})[definition.version] = fingerprint(definition)
    ordered = {key: dict(sorted(versions.items())) for key, versions in sorted(lock.items())}
    (scales_dir / LOCK_FILE).write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    return ordered
