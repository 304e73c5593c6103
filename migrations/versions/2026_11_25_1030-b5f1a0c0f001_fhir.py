"""Add FHIR resources, registered questionnaires and conditional-create keys.

Revision ID: b5f1a0c0f001
Revises: 63bf2b2616f0
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b5f1a0c0f001"
down_revision: str | None = "63bf2b2616f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_questionnaire",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("canonical_version", sa.String(length=64), nullable=False),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column(
            "mapping", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("recorded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_fhir_questionnaire_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_fhir_questionnaire_recorded_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_questionnaire")),
        sa.UniqueConstraint("clinic_id", "logical_id", name=op.f("uq_fhir_questionnaire_clinic_id_logical_id")),
        sa.UniqueConstraint(
            "clinic_id", "url", "canonical_version", name=op.f("uq_fhir_questionnaire_clinic_id_url_canonical_version")
        ),
    )
    op.create_table(
        "fhir_resource",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("measurement_id", sa.Uuid(), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("identifier_system", sa.String(length=300), nullable=True),
        sa.Column("identifier_value", sa.String(length=300), nullable=True),
        sa.Column("match_key", sa.String(length=700), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("recorded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_fhir_resource_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_fhir_resource_patient_id_patient"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_fhir_resource_recorded_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_resource")),
        sa.UniqueConstraint(
            "clinic_id", "resource_type", "logical_id", name=op.f("uq_fhir_resource_clinic_id_resource_type_logical_id")
        ),
        sa.UniqueConstraint(
            "clinic_id", "resource_type", "match_key", name=op.f("uq_fhir_resource_clinic_id_resource_type_match_key")
        ),
    )
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_resource_identifier", ["clinic_id", "resource_type", "identifier_value"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fhir_resource_measurement_id"), ["measurement_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_resource_measurement_id"))
        batch_op.drop_index("ix_fhir_resource_identifier")

    op.drop_table("fhir_resource")
    op.drop_table("fhir_questionnaire")
