"""A measurement's patient foreign key names the clinic too, so the database refuses another clinic's patient.

patient gets a unique (id, clinic_id) for the key to point at; the ingest path then stores without a lookup first.

Revision ID: 627930b5cfe6
Revises: a2dcafa8d21a
Create Date: 2026-11-25 13:34:42.275152
"""

from collections.abc import Sequence

from alembic import op

revision: str = "627930b5cfe6"
down_revision: str | None = "a2dcafa8d21a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_patient_id_clinic_id"), ["id", "clinic_id"])

    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_measurement_patient_id_patient"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_measurement_patient_id_patient"),
            "patient",
            ["patient_id", "clinic_id"],
            ["id", "clinic_id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_measurement_patient_id_patient"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_measurement_patient_id_patient"), "patient", ["patient_id"], ["id"], ondelete="RESTRICT"
        )

    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_patient_id_clinic_id"), type_="unique")
