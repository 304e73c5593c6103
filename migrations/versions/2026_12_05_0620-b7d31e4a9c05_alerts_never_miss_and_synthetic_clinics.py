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
Revises: 3f8a1c5e7b92
Create Date: 2026-12-05 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d31e4a9c05"
down_revision: str | None = "3f8a1c5e7b92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM9_FLAGS = "('item9_positive', 'item9_endorsed')"


def upgrade() -> None:
    with op.batch_alter_table("risk_alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_value", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.String(length=20), server_default="urgent", nullable=False))
        batch_op.add_column(sa.Column("historical", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_constraint("uq_risk_alert_measurement_id_flag", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_risk_alert_measurement_id_flag_item_value"), ["measurement_id", "flag", "item_value"]
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
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("item9_missing_pages", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("historical_alert_days", sa.Integer(), server_default="14", nullable=False))
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(sa.Column("synthetic", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_column("synthetic")
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("historical_alert_days")
        batch_op.drop_column("item9_missing_pages")
    # Never deletes an alert: while a measurement has two alerts of one flag (an amendment raised item 9), the old
    # unique key cannot be restored and the downgrade fails.
    with op.batch_alter_table("risk_alert", schema=None) as batch_op:
        batch_op.drop_constraint("uq_risk_alert_measurement_id_flag_item_value", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_risk_alert_measurement_id_flag"), ["measurement_id", "flag"])
        batch_op.drop_column("historical")
        batch_op.drop_column("priority")
        batch_op.drop_column("item_value")
