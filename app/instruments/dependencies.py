from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.state import state_of
from app.instruments.registry import InstrumentRegistry


async def get_registry(request: Request) -> InstrumentRegistry:
    """No I/O: async so FastAPI does not hand it to the threadpool."""
    return state_of(request).part(InstrumentRegistry)


RegistryDep = Annotated[InstrumentRegistry, Depends(get_registry)]
