"""Idempotency records keep the headers a replay repeats, never a secret, and can be purged by age.

``response_headers`` (JSON): Location, ETag, Last-Modified, Content-Location and Content-Type of the first response.
``secret_withheld``: the response held a secret (an API key, an enrolment code), left out of ``response_body``; its
replay is refused. An index on ``created_at`` serves ``purge-idempotency-records``.

Records written before this revision stored such responses whole: their secrets are removed here (the API key of a
``POST /v1/api-keys`` response, the code and URI of a ``POST /v1/patients/{id}/enrolments`` one) and they are marked
``secret_withheld``. The downgrade drops the columns and the index; removed secrets are not restored.

Revision ID: dd5137164675
Revises: f78a36652ed8
Create Date: 2026-12-04 21:25:22.956200
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "dd5137164675"
down_revision: str | None = "f78a36652ed8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRET_FIELDS = (
    ({"id", "prefix", "role", "key"}, {"key"}),  # ApiKeyIssued
    ({"id", "patient_id", "code", "enrolment_uri"}, {"code", "enrolment_uri"}),  # EnrolmentIssued
)
"""(fields that identify a secret-bearing response, fields that are its secret)."""

record = sa.table(
    "idempotency_record",
    sa.column("id", sa.Uuid()),
    sa.column("response_body", sa.Text()),
    sa.column("secret_withheld", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "response_headers",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("secret_withheld", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f("ix_idempotency_record_created_at"), ["created_at"], unique=False)
    _withhold_stored_secrets()


def _withhold_stored_secrets() -> None:
    connection = op.get_bind()
    candidates = connection.execute(
        sa.select(record.c.id, record.c.response_body).where(
            sa.or_(record.c.response_body.like('%"key"%'), record.c.response_body.like('%"enrolment_uri"%'))
        )
    ).all()
    for row_id, body in candidates:
        try:
            stored = json.loads(body)
        except ValueError:
            continue
        if not isinstance(stored, dict):
            continue
        for shape, secrets in SECRET_FIELDS:
            if shape <= stored.keys():
                kept = {name: value for name, value in stored.items() if name not in secrets}
                connection.execute(
                    sa.update(record)
                    .where(record.c.id == row_id)
                    .values(response_body=json.dumps(kept, separators=(",", ":")), secret_withheld=True)
                )
                break


def downgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_record_created_at"))
        batch_op.drop_column("secret_withheld")
        batch_op.drop_column("response_headers")
