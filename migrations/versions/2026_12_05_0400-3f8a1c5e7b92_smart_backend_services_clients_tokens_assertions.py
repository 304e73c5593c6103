"""SMART Backend Services: registered clients (public JWKS, allowed scopes, and an ``api_key`` row without a secret
whose id names the client wherever a caller's key is recorded), their access tokens (HMAC only, like API keys) and
the ``jti`` of each client assertion used, kept until it expires so that it is never accepted twice.

Revision ID: 3f8a1c5e7b92
Revises: 3a7d5e9c1f42
Create Date: 2026-12-05 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3f8a1c5e7b92"
down_revision: str | None = "3a7d5e9c1f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smart_client",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "jwks", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("scopes", sa.String(length=2000), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_smart_client_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_key.id"], name=op.f("fk_smart_client_key_id_api_key"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_client")),
        sa.UniqueConstraint("key_id", name=op.f("uq_smart_client_key_id")),
    )
    with op.batch_alter_table("smart_client", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smart_client_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "smart_access_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["smart_client.id"],
            name=op.f("fk_smart_access_token_client_id_smart_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_smart_access_token_clinic_id_clinic"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_access_token")),
        sa.UniqueConstraint("prefix", name=op.f("uq_smart_access_token_prefix")),
    )
    with op.batch_alter_table("smart_access_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smart_access_token_client_id"), ["client_id"], unique=False)

    op.create_table(
        "smart_assertion",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["smart_client.id"],
            name=op.f("fk_smart_assertion_client_id_smart_client"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_assertion")),
        sa.UniqueConstraint("client_id", "jti", name=op.f("uq_smart_assertion_client_id_jti")),
    )


def downgrade() -> None:
    op.drop_table("smart_assertion")
    with op.batch_alter_table("smart_access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_access_token_client_id"))
    op.drop_table("smart_access_token")
    with op.batch_alter_table("smart_client", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_client_clinic_id"))
    op.drop_table("smart_client")
