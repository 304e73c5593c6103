"""Add clinic_instrument_text: licensed item wording a clinic loads for its own use.

Revision ID: 63bf2b2616f0
Revises: ccafbfaea694
Create Date: 2026-11-25 10:11:47.687850
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "63bf2b2616f0"
down_revision: str | None = "ccafbfaea694"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_instrument_text",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column(
            "item_text", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "option_labels", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("licence_note", sa.Text(), nullable=False),
        sa.Column("loaded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_clinic_instrument_text_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["loaded_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_clinic_instrument_text_loaded_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_instrument_text")),
        sa.UniqueConstraint(
            "clinic_id", "instrument_id", name=op.f("uq_clinic_instrument_text_clinic_id_instrument_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("clinic_instrument_text")
