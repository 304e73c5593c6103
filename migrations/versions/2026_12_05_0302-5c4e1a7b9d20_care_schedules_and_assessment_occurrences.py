"""Care: a patient's assessment schedules and their stored occurrences (one per instrument per window).

``schedule``: what a patient is asked to answer and when (every n days from a local day, or at each therapy
session), in the patient's time zone. ``assessment_occurrence``: each instrument due in each window
[due_from, due_by) (UTC), with what happened to it (open, completed by a measurement, declined, cancelled); its
status (scheduled, due, missed...) is derived from that and the time when read. New tables only: nothing to migrate.

Revision ID: 5c4e1a7b9d20
Revises: 7c4d2e8f1b36
Create Date: 2026-12-05 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5c4e1a7b9d20"
down_revision: str | None = "7c4d2e8f1b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "instruments",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at_each_session", sa.Boolean(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("every_days", sa.Integer(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("generated_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_schedule_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_schedule_created_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id", "clinic_id"],
            ["patient.id", "patient.clinic_id"],
            name=op.f("fk_schedule_patient_id_patient"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule")),
    )
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.create_index("ix_schedule_clinic_patient", ["clinic_id", "patient_id"], unique=False)

    op.create_table(
        "assessment_occurrence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column("due_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("measurement_id", sa.Uuid(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("declined_by", sa.String(length=10), nullable=True),
        sa.Column("declined_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_assessment_occurrence_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["declined_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_assessment_occurrence_declined_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id", "clinic_id"],
            ["patient.id", "patient.clinic_id"],
            name=op.f("fk_assessment_occurrence_patient_id_patient"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedule.id"],
            name=op.f("fk_assessment_occurrence_schedule_id_schedule"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["therapy_session.id"],
            name=op.f("fk_assessment_occurrence_session_id_therapy_session"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_occurrence")),
        sa.UniqueConstraint(
            "schedule_id",
            "instrument_id",
            "due_from",
            name=op.f("uq_assessment_occurrence_schedule_id_instrument_id_due_from"),
        ),
    )
    with op.batch_alter_table("assessment_occurrence", schema=None) as batch_op:
        batch_op.create_index("ix_assessment_occurrence_clinic_due", ["clinic_id", "due_from"], unique=False)
        batch_op.create_index(
            "ix_assessment_occurrence_clinic_patient_due", ["clinic_id", "patient_id", "due_from"], unique=False
        )
        batch_op.create_index(
            "ix_assessment_occurrence_patient_instrument_due", ["patient_id", "instrument_id", "due_from"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_occurrence_measurement_id"), ["measurement_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_assessment_occurrence_schedule_id"), ["schedule_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assessment_occurrence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_occurrence_schedule_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_occurrence_measurement_id"))
        batch_op.drop_index("ix_assessment_occurrence_patient_instrument_due")
        batch_op.drop_index("ix_assessment_occurrence_clinic_patient_due")
        batch_op.drop_index("ix_assessment_occurrence_clinic_due")
    op.drop_table("assessment_occurrence")
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_clinic_patient")
    op.drop_table("schedule")
