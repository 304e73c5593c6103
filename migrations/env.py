"""Alembic environment: the URL comes from the caller (tests, CLI) or DATABASE_URL; batch mode for SQLite."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from app.core.config import get_settings
from app.core.db import UTCDateTime, create_db_engine
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our UTCDateTime as the plain column type it stores, so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _ours(name: str | None, type_: str, _parent_names: Any) -> bool:
    """procrastinate's tables, indexes and constraints (its schema, applied by a migration from the pinned package,
    on PostgreSQL) are not our models': ``alembic check`` and autogenerate leave them alone."""
    return not (name or "").startswith(PROCRASTINATE_PREFIXES)


PROCRASTINATE_PREFIXES = ("procrastinate_", "idx_procrastinate_")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = get_settings()
    url = config.attributes.get("database_url") or settings.database_url
    engine = create_db_engine(settings.model_copy(update={"database_url": url}))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
