"""Assessment reminders: what each occurrence has been reminded of, and the clinic's quiet hours.

``assessment_occurrence.due_reminded_at`` / ``overdue_reminded_at``: when its ``assessment.due`` /
``assessment.overdue`` reminder was raised or passed over (null: not yet), each with a partial index on the open
occurrences still waiting for it, so the periodic job finds the few whose moment came without reading the rest.
Existing occurrences whose window has closed are passed over (no reminder is sent for a closed window).
``clinic_settings.reminder_quiet_hours_start`` / ``_end``: local times (in each schedule's zone) in which no
reminder is delivered; null: none.

Revision ID: 9e2f4a6c8b13
Revises: 5c4e1a7b9d20
Create Date: 2026-12-05 03:20:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "9e2f4a6c8b13"
down_revision: str | None = "5c4e1a7b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE_PENDING = "state = 'open' AND due_reminded_at IS NULL"
OVERDUE_PENDING = "state = 'open' AND overdue_reminded_at IS NULL"

occurrences = sa.table(
    "assessment_occurrence",
    sa.column("due_by", sa.DateTime(timezone=True)),
    sa.column("due_reminded_at", sa.DateTime(timezone=True)),
    sa.column("overdue_reminded_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("assessment_occurrence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overdue_reminded_at", sa.DateTime(timezone=True), nullable=True))
    now = datetime.now(UTC)
    op.execute(
        occurrences.update()
        .where(occurrences.c.due_by <= now)
        .values(due_reminded_at=now, overdue_reminded_at=now)
    )
    with op.batch_alter_table("assessment_occurrence", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessment_occurrence_due_reminder_pending",
            ["due_from"],
            unique=False,
            sqlite_where=sa.text(DUE_PENDING),
            postgresql_where=sa.text(DUE_PENDING),
        )
        batch_op.create_index(
            "ix_assessment_occurrence_overdue_reminder_pending",
            ["due_by"],
            unique=False,
            sqlite_where=sa.text(OVERDUE_PENDING),
            postgresql_where=sa.text(OVERDUE_PENDING),
        )
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminder_quiet_hours_start", sa.Time(), nullable=True))
        batch_op.add_column(sa.Column("reminder_quiet_hours_end", sa.Time(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("reminder_quiet_hours_end")
        batch_op.drop_column("reminder_quiet_hours_start")
    with op.batch_alter_table("assessment_occurrence", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_assessment_occurrence_overdue_reminder_pending",
            sqlite_where=sa.text(OVERDUE_PENDING),
            postgresql_where=sa.text(OVERDUE_PENDING),
        )
        batch_op.drop_index(
            "ix_assessment_occurrence_due_reminder_pending",
            sqlite_where=sa.text(DUE_PENDING),
            postgresql_where=sa.text(DUE_PENDING),
        )
        batch_op.drop_column("overdue_reminded_at")
        batch_op.drop_column("due_reminded_at")
