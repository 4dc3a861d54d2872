"""predictions whose human label changed, their audited sums moved in batches

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "performance_label_changes",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_label_changes_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_label_changes")),
    )
    op.create_index(
        op.f("ix_performance_label_changes_model_id"),
        "performance_label_changes",
        ["model_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_performance_label_changes_model_id"), table_name="performance_label_changes"
    )
    op.drop_table("performance_label_changes")
