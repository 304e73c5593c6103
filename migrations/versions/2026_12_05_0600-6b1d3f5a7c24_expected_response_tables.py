"""Expected-response tables: per clinic, instrument, score and version family, fitted from the clinic's completed
courses (with the data cut and the counts) or loaded with a citation; never updated, the latest is current.

Revision ID: 6b1d3f5a7c24
Revises: 3f8a1c5e7b92
Create Date: 2026-12-05 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6b1d3f5a7c24"
down_revision: str | None = "3f8a1c5e7b92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "expected_response_table",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column("score_key", sa.String(length=50), nullable=False),
        sa.Column("version_family", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("citation", sa.Text(), nullable=True),
        sa.Column("model_form", sa.Text(), nullable=False),
        sa.Column("time_scale", sa.String(length=30), nullable=False),
        sa.Column("coefficients", JSON, nullable=False),
        sa.Column("band_z", sa.Float(), nullable=False),
        sa.Column("max_weeks", sa.Float(), nullable=True),
        sa.Column("courses", sa.Integer(), nullable=True),
        sa.Column("measurements", sa.Integer(), nullable=True),
        sa.Column("data_cut_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notices", JSON, nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_expected_response_table_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_expected_response_table_created_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expected_response_table")),
    )
    with op.batch_alter_table("expected_response_table", schema=None) as batch_op:
        batch_op.create_index(
            "ix_expected_response_table_current",
            ["clinic_id", "instrument_id", "score_key", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("expected_response_table", schema=None) as batch_op:
        batch_op.drop_index("ix_expected_response_table_current")
    op.drop_table("expected_response_table")
