"""Alerts that never miss, and synthetic clinics.

``risk_alert.item_value``: the item-9 answer that raised an item-9 alert (null for other kinds and for
``item9_missing``); existing item-9 alerts take it from the measurement version that raised them. An amendment that
raises item 9 above every value already alerted for its measurement raises a new alert, so the unique key becomes
(measurement, flag, item value). ``risk_alert.priority``: ``urgent`` (risk flags) or ``routine`` (``item9_missing``
prompts, ``not_on_track``). ``risk_alert.historical``: raised by a measurement older than the clinic's
``historical_alert_days`` when it was recorded (imported history): shown, never paged.
``clinic_settings.item9_missing_pages`` (does an ``item9_missing`` prompt call the webhook) and
``clinic_settings.historical_alert_days``. ``clinic.synthetic``: a clinic made by the synthetic cohort generator.
The downgrade never deletes an alert: it fails while re-raised alerts exist.

Revision ID: b7d31e4a9c05
Revises: 6b1d3f5a7c24
Create Date: 2026-12-05 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d31e4a9c05"
down_revision: str | None = "6b1d3f5a7c24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM9_FLAGS = "('item9_positive', 'item9_endorsed')"


def upgrade() -> None:
    # Columns are added in place (a constant default needs no table rebuild on SQLite): rebuilding ``clinic`` or
    # ``clinic_settings`` would drop tables that others reference.
    op.add_column("risk_alert", sa.Column("item_value", sa.Integer(), nullable=True))
    op.add_column("risk_alert", sa.Column("priority", sa.String(length=20), server_default="urgent", nullable=False))
    op.add_column("risk_alert", sa.Column("historical", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("clinic_settings", sa.Column("item9_missing_pages", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("clinic_settings", sa.Column("historical_alert_days", sa.Integer(), server_default="14", nullable=False))
    op.add_column("clinic", sa.Column("synthetic", sa.Boolean(), server_default=sa.false(), nullable=False))
    _replace_unique_key(
        old="uq_risk_alert_measurement_id_flag",
        new="uq_risk_alert_measurement_id_flag_item_value",
        columns=["measurement_id", "flag", "item_value"],
    )
    item9 = (
        "(measurement.items ->> '9')::integer"
        if op.get_bind().dialect.name == "postgresql"
        else "CAST(json_extract(measurement.items, '$.\"9\"') AS INTEGER)"
    )
    op.execute(
        f"UPDATE risk_alert SET item_value = (SELECT {item9} FROM measurement "
        f"WHERE measurement.id = risk_alert.measurement_row_id) WHERE flag IN {ITEM9_FLAGS}"
    )


def _replace_unique_key(*, old: str, new: str, columns: list[str]) -> None:
    """Swap risk_alert's unique key. SQLite rebuilds the table for it, and dropping the old table deletes the webhook
    deliveries that reference its alerts (ON DELETE CASCADE, foreign keys on): they are kept aside and put back."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE kept_alert_delivery AS SELECT * FROM webhook_delivery WHERE alert_id IS NOT NULL")
    with op.batch_alter_table("risk_alert", schema=None) as batch_op:
        batch_op.drop_constraint(old, type_="unique")
        batch_op.create_unique_constraint(new, columns)
    if sqlite:
        op.execute("INSERT INTO webhook_delivery SELECT * FROM kept_alert_delivery WHERE id NOT IN (SELECT id FROM webhook_delivery)")
        op.execute("DROP TABLE kept_alert_delivery")


def downgrade() -> None:
    # Never deletes an alert: while a measurement has two alerts of one flag (an amendment raised item 9), the old
    # unique key cannot be restored and the downgrade fails.
    _replace_unique_key(
        old="uq_risk_alert_measurement_id_flag_item_value",
        new="uq_risk_alert_measurement_id_flag",
        columns=["measurement_id", "flag"],
    )
    # Dropped in place (SQLite 3.35+), not by rebuilding tables that others reference.
    op.drop_column("clinic", "synthetic")
    op.drop_column("clinic_settings", "historical_alert_days")
    op.drop_column("clinic_settings", "item9_missing_pages")
    op.drop_column("risk_alert", "historical")
    op.drop_column("risk_alert", "priority")
    op.drop_column("risk_alert", "item_value")
