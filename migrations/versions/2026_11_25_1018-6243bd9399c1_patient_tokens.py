"""Add patient tokens: enrolment codes, and api_key.patient_id for keys that act for one patient.

Revision ID: 6243bd9399c1
Revises: bf57884c2549
Create Date: 2026-11-25 10:18:09.951923
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6243bd9399c1"
down_revision: str | None = "bf57884c2549"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("token_days", sa.Integer(), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_key_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_enrolment_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_enrolment_patient_id_patient"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["token_key_id"], ["api_key.id"], name=op.f("fk_enrolment_token_key_id_api_key"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrolment_code_hash")),
    )
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolment_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrolment_patient_id"), ["patient_id"], unique=False)

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("created_by_key_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_key_patient_id"), ["patient_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_key_patient_id_patient"), "patient", ["patient_id"], ["id"], ondelete="CASCADE"
        )



def downgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_key_patient_id_patient"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_key_patient_id"))
        batch_op.drop_column("created_by_key_id")
        batch_op.drop_column("patient_id")

    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_patient_id"))
        batch_op.drop_index(batch_op.f("ix_enrolment_clinic_id"))

    op.drop_table("enrolment")
