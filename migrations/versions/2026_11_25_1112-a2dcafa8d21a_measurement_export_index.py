"""Index measurement(clinic_id, patient_id, measured_at) so exports stream in order without a sort.

Revision ID: a2dcafa8d21a
Revises: 6243bd9399c1
Create Date: 2026-11-25 11:12:38.873620
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a2dcafa8d21a"
down_revision: str | None = "6243bd9399c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_measurement_clinic_patient_time", ["clinic_id", "patient_id", "measured_at"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_index("ix_measurement_clinic_patient_time")

