from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.instruments.registry import InstrumentRegistry


async def get_registry(request: Request) -> InstrumentRegistry:
    """No I/O: async so FastAPI does not hand it to the threadpool."""
    registry: InstrumentRegistry = request.app.state.registry
    return registry


RegistryDep = Annotated[InstrumentRegistry, Depends(get_registry)]
