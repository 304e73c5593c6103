"""The clinic's time zone: ``clinic_settings.timezone``, an IANA name (default ``UTC``) in which the clinician report
and the caseload show times, with their UTC offset.

Revision ID: 6b1e9d3f5a27
Revises: b7d31e4a9c05
Create Date: 2026-12-05 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6b1e9d3f5a27"
down_revision: str | None = "b7d31e4a9c05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("timezone")
