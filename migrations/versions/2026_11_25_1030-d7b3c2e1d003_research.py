"""Add research import and export tables.

Revision ID: d7b3c2e1d003
Revises: c6a2b1d0c002
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

revision: str = "d7b3c2e1d003"
down_revision: str | None = "c6a2b1d0c002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
