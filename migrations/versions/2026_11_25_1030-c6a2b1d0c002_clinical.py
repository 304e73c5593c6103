"""Add clinical change parameters, alerts and clinic settings.

Revision ID: c6a2b1d0c002
Revises: b5f1a0c0f001
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c6a2b1d0c002"
down_revision: str | None = "b5f1a0c0f001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_change_parameters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column("score_key", sa.String(length=50), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("reliability", sa.Float(), nullable=True),
        sa.Column("clinical_mean", sa.Float(), nullable=True),
        sa.Column("clinical_sd", sa.Float(), nullable=True),
        sa.Column("functional_mean", sa.Float(), nullable=True),
        sa.Column("functional_sd", sa.Float(), nullable=True),
        sa.Column("cutoff_type", sa.String(length=10), nullable=True),
        sa.Column("caseness_cutoff", sa.Float(), nullable=True),
        sa.Column("minimum_change", sa.Float(), nullable=True),
        sa.Column("response_reduction", sa.Float(), nullable=True),
        sa.Column("remission_below", sa.Float(), nullable=True),
        sa.Column("citation", sa.Text(), nullable=False),
        sa.Column("set_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_clinic_change_parameters_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["set_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_clinic_change_parameters_set_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_change_parameters")),
        sa.UniqueConstraint(
            "clinic_id",
            "instrument_id",
            "score_key",
            "method",
            name=op.f("uq_clinic_change_parameters_clinic_id_instrument_id_score_key_method"),
        ),
    )
    op.create_table(
        "clinic_settings",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("crisis_text", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("updated_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_clinic_settings_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_clinic_settings_updated_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_clinic_settings")),
    )
    op.create_table(
        "risk_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("measurement_id", sa.Uuid(), nullable=False),
        sa.Column("measurement_row_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=50), nullable=False),
        sa.Column("flag", sa.String(length=50), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("acknowledgement_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_risk_alert_acknowledged_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_risk_alert_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["measurement_row_id"],
            ["measurement.id"],
            name=op.f("fk_risk_alert_measurement_row_id_measurement"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_risk_alert_patient_id_patient"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_alert")),
        sa.UniqueConstraint("measurement_id", "flag", name=op.f("uq_risk_alert_measurement_id_flag")),
    )
    with op.batch_alter_table("risk_alert", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_alert_clinic_acknowledged_raised", ["clinic_id", "acknowledged_at", "raised_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_risk_alert_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["risk_alert.id"], name=op.f("fk_webhook_delivery_alert_id_risk_alert"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_webhook_delivery_clinic_id_clinic"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_delivery_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_delivery_delivered_at"), ["delivered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_delivered_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_alert_id"))

    op.drop_table("webhook_delivery")
    with op.batch_alter_table("risk_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_alert_patient_id"))
        batch_op.drop_index("ix_risk_alert_clinic_acknowledged_raised")

    op.drop_table("risk_alert")
    op.drop_table("clinic_settings")
    op.drop_table("clinic_change_parameters")
