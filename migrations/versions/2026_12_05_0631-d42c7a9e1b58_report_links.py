"""Report links: ``report_link`` (a short-lived link to one patient's report, stored as an HMAC of its token, with
its expiry and revocation) and ``clinic_settings.report_frame_origins`` (the origins allowed to frame its page).

Revision ID: d42c7a9e1b58
Revises: 6b1e9d3f5a27
Create Date: 2026-12-05 06:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d42c7a9e1b58"
down_revision: str | None = "6b1e9d3f5a27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_link",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("include_alerts", sa.Boolean(), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_key_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_report_link_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_report_link_created_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id", "clinic_id"],
            ["patient.id", "patient.clinic_id"],
            name=op.f("fk_report_link_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_report_link_revoked_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_report_link_token_hash")),
    )
    with op.batch_alter_table("report_link", schema=None) as batch_op:
        batch_op.create_index("ix_report_link_clinic_patient", ["clinic_id", "patient_id"], unique=False)
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "report_frame_origins",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("report_frame_origins")
    with op.batch_alter_table("report_link", schema=None) as batch_op:
        batch_op.drop_index("ix_report_link_clinic_patient")
    op.drop_table("report_link")
