"""Load and validate every instrument definition in ``scales/`` once, at start-up."""

from __future__ import annotations

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
