from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.instruments.registry import InstrumentRegistry


def get_registry(request: Request) -> InstrumentRegistry:
    registry: InstrumentRegistry = request.app.state.registry
    return registry


RegistryDep = Annotated[InstrumentRegistry, Depends(get_registry)]
