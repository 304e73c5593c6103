"""Background jobs: procrastinate's schema on PostgreSQL; the in-process runner's tables (used on SQLite).

On PostgreSQL this applies procrastinate's own schema (``procrastinate_*`` tables, types, functions and triggers)
from the pinned package (``SchemaManager.get_schema()``, procrastinate 3.10.0); ``migrations/env.py`` keeps
``alembic check`` off those objects. Upgrading procrastinate needs a new revision that applies the SQL files of its
``sql/migrations`` between the two versions (procrastinate's upgrade procedure), never this one again: the check
below refuses to build a new database from another version's schema, which the later migrations would not expect.

``background_job`` and ``periodic_run`` are the SQLite runner's (``app.core.job_models``); they are created on
PostgreSQL too (one schema for both databases) and stay empty there.

Revision ID: 5b1e0c7d9a21
Revises: ec0727bab888
Create Date: 2026-12-05 03:00:00
"""

from collections.abc import Sequence
from typing import Any, cast

import procrastinate
import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

revision: str = "5b1e0c7d9a21"
down_revision: str | None = "ec0727bab888"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCRASTINATE_VERSION = "3.10.0"


def upgrade() -> None:
    op.create_table(
        "background_job",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_name", sa.String(length=128), nullable=False),
        sa.Column(
            "args", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("queueing_lock", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_job")),
    )
    with op.batch_alter_table("background_job", schema=None) as batch_op:
        batch_op.create_index("ix_background_job_status_scheduled_at", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(
            "uq_background_job_queueing_lock",
            ["queueing_lock"],
            unique=True,
            sqlite_where=sa.text("status = 'todo'"),
            postgresql_where=sa.text("status = 'todo'"),
        )
    op.create_table(
        "periodic_run",
        sa.Column("task_name", sa.String(length=128), nullable=False),
        sa.Column("last_tick", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_name", name=op.f("pk_periodic_run")),
    )
    if op.get_bind().dialect.name == "postgresql":
        if procrastinate.__version__ != PROCRASTINATE_VERSION:
            raise RuntimeError(
                f"this revision applies procrastinate {PROCRASTINATE_VERSION}'s schema, but "
                f"{procrastinate.__version__} is installed: install the pinned version (requirements.lock)"
            )
        _driver().execute(SchemaManager.get_schema())


def _driver() -> Any:
    """The migration's psycopg connection (same transaction), which sends SQL without parameters as it is: the
    procrastinate schema's own "%" characters are not placeholders."""
    return cast(Any, op.get_bind().connection.driver_connection)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _driver().execute(
            """
            DO $$
            DECLARE item record;
            BEGIN
                FOR item IN SELECT tablename FROM pg_tables
                            WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
                    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
                END LOOP;
                FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                            JOIN pg_namespace n ON n.oid = p.pronamespace
                            WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
                    EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
                END LOOP;
                FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                            WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                              AND t.typtype IN ('e', 'c') LOOP
                    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
                END LOOP;
            END $$;
            """
        )
    op.drop_table("periodic_run")
    with op.batch_alter_table("background_job", schema=None) as batch_op:
        batch_op.drop_index("uq_background_job_queueing_lock", sqlite_where=sa.text("status = 'todo'"))
        batch_op.drop_index("ix_background_job_status_scheduled_at")
    op.drop_table("background_job")
