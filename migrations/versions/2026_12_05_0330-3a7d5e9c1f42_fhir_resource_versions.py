"""FHIR resource versions: the earlier versions of kept resources (QuestionnaireResponses, registered
Questionnaires), saved as they were when an update replaced them, for vread and ``_history``.

Versions replaced before this revision were not kept; nothing is backfilled.

Revision ID: 3a7d5e9c1f42
Revises: 9e2f4a6c8b13
Create Date: 2026-12-05 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3a7d5e9c1f42"
down_revision: str | None = "9e2f4a6c8b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_resource_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("recorded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_fhir_resource_version_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_fhir_resource_version_patient_id_patient"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_fhir_resource_version_recorded_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_resource_version")),
        sa.UniqueConstraint(
            "clinic_id",
            "resource_type",
            "logical_id",
            "version_id",
            name="uq_fhir_resource_version_version_id",
        ),
    )


def downgrade() -> None:
    op.drop_table("fhir_resource_version")
