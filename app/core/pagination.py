from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from app.core.schemas import Page

MAX_PAGE_SIZE = 500
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int

    def page(self, rows: Sequence[T], convert: Callable[[T], R]) -> Page[R]:
        """Build a page from ``limit + 1`` fetched rows: the extra row only tells whether there is more."""
        return Page[R](
            items=[convert(row) for row in rows[: self.limit]],
            limit=self.limit,
            offset=self.offset,
            has_more=len(rows) > self.limit,
        )

    def page_values(self, rows: Sequence[T], convert: Callable[[T], Any]) -> dict[str, Any]:
        """``page`` as plain values (``core.responses.values_response``): ``convert`` gives each item's."""
        return {
            "items": [convert(row) for row in rows[: self.limit]],
            "limit": self.limit,
            "offset": self.offset,
            "has_more": len(rows) > self.limit,
        }


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    """``async`` though it awaits nothing: FastAPI runs a sync dependency in the threadpool, a hand-off per request."""
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]
