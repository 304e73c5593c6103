"""Add research_export: the record of every research export (identified ones are audited).

Revision ID: d7b3c2e1d003
Revises: c6a2b1d0c002
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d7b3c2e1d003"
down_revision: str | None = "c6a2b1d0c002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "research_export",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("identified", sa.Boolean(), nullable=False),
        sa.Column(
            "parameters", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_key.id"], name=op.f("fk_research_export_api_key_id_api_key"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_research_export_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_export")),
    )
    with op.batch_alter_table("research_export", schema=None) as batch_op:
        batch_op.create_index("ix_research_export_clinic_created", ["clinic_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("research_export", schema=None) as batch_op:
        batch_op.drop_index("ix_research_export_clinic_created")

    op.drop_table("research_export")
