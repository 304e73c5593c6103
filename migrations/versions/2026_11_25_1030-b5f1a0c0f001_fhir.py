"""Add FHIR resources, registered questionnaires and conditional-create keys.

Revision ID: b5f1a0c0f001
Revises: 63bf2b2616f0
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

revision: str = "b5f1a0c0f001"
down_revision: str | None = "63bf2b2616f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
