"""data-quality groups of batches that did not wait for the model's ticket lock

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quality_deferred",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("hour", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_quality_deferred_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_deferred")),
    )
    op.create_index(
        op.f("ix_quality_deferred_model_id"), "quality_deferred", ["model_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_quality_deferred_model_id"), table_name="quality_deferred")
    op.drop_table("quality_deferred")
