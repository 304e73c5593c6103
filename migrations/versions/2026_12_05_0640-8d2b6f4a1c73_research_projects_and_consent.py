"""Research projects (each with its own pseudonym salt), patients' consent history per project, researcher keys
issued for one project (``api_key.research_project_id``) and the project each de-identified export was of.

Existing researcher keys keep no project (NULL): they can no longer export or analyse until a key is issued for a
project; nothing is exported under a project its patients were never asked about.

Revision ID: 8d2b6f4a1c73
Revises: d42c7a9e1b58
Create Date: 2026-12-05 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2b6f4a1c73"
down_revision: str | None = "d42c7a9e1b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "research_project",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=2000), nullable=False),
        sa.Column("ethics_reference", sa.String(length=200), nullable=False),
        sa.Column("consent_model", sa.String(length=10), nullable=False),
        sa.Column("pseudonym_salt", sa.String(length=64), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_research_project_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_project")),
        sa.UniqueConstraint("clinic_id", "name", name=op.f("uq_research_project_clinic_id_name")),
    )
    with op.batch_alter_table("research_project", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_research_project_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "research_consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("recorded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_research_consent_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_research_consent_patient_id_patient"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["research_project.id"],
            name=op.f("fk_research_consent_project_id_research_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_consent")),
    )
    with op.batch_alter_table("research_consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_research_consent_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_research_consent_project_patient", ["project_id", "patient_id", "recorded_at"], unique=False
        )

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("research_project_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_key_research_project_id"), ["research_project_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_key_research_project_id_research_project"),
            "research_project",
            ["research_project_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("research_export", schema=None) as batch_op:
        batch_op.add_column(sa.Column("research_project_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_research_export_research_project_id"), ["research_project_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_research_export_research_project_id_research_project"),
            "research_project",
            ["research_project_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("research_export", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_research_export_research_project_id_research_project"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_research_export_research_project_id"))
        batch_op.drop_column("research_project_id")

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_key_research_project_id_research_project"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_key_research_project_id"))
        batch_op.drop_column("research_project_id")

    with op.batch_alter_table("research_consent", schema=None) as batch_op:
        batch_op.drop_index("ix_research_consent_project_patient")
        batch_op.drop_index(batch_op.f("ix_research_consent_patient_id"))
    op.drop_table("research_consent")

    with op.batch_alter_table("research_project", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_research_project_clinic_id"))
    op.drop_table("research_project")
