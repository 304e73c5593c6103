"""Clinic webhooks are signed: a random salt per clinic, from which the signing secret is derived, never the secret.

``webhook_secret_salt``: the current secret's salt (the secret is HMAC-SHA256 of WEBHOOK_SIGNING_KEY over it);
``webhook_previous_secret_salt``: the one before the last rotation, which still signs for a while;
``webhook_secret_issued_at``: when the current one was issued.

A clinic that already has a webhook gets a salt here, so its deliveries are signed from now on (nothing is sent
unsigned); its admin learns the secret by rotating it (``POST /v1/clinic/webhook-secret``). The downgrade drops the
columns.

Revision ID: ec0727bab888
Revises: dd5137164675
Create Date: 2026-12-04 21:30:25.086639
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "ec0727bab888"
down_revision: str | None = "dd5137164675"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

settings = sa.table(
    "clinic_settings",
    sa.column("clinic_id", sa.Uuid()),
    sa.column("webhook_url", sa.String()),
    sa.column("webhook_secret_salt", sa.String()),
    sa.column("webhook_secret_issued_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("webhook_previous_secret_salt", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret_issued_at", sa.DateTime(timezone=True), nullable=True))

    connection = op.get_bind()
    now = datetime.now(UTC)
    clinics = connection.execute(sa.select(settings.c.clinic_id).where(settings.c.webhook_url.is_not(None)))
    for clinic_id in clinics.scalars().all():
        connection.execute(
            settings.update()
            .where(settings.c.clinic_id == clinic_id)
            .values(webhook_secret_salt=secrets.token_hex(16), webhook_secret_issued_at=now)
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret_issued_at")
        batch_op.drop_column("webhook_previous_secret_salt")
        batch_op.drop_column("webhook_secret_salt")
