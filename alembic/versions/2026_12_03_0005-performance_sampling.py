"""performance: tickets' sampling design, models' performance settings, per-block sums

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("inclusion_probability", sa.Float(), nullable=True))
        batch.add_column(sa.Column("sampling_stratum", sa.String(length=30), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("performance", sa.JSON(none_as_null=True), nullable=True))
    op.create_index(
        "ix_predictions_model_actual_at",
        "predictions",
        ["model_id", "actual_at", "id"],
        postgresql_where=sa.text("actual_at IS NOT NULL"),
        sqlite_where=sa.text("actual_at IS NOT NULL"),
    )
    op.create_table(
        "performance_parts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sums", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_parts_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_parts")),
    )
    op.create_index(
        "ix_performance_parts_lookup", "performance_parts", ["model_id", "block"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_performance_parts_lookup", table_name="performance_parts")
    op.drop_table("performance_parts")
    op.drop_index("ix_predictions_model_actual_at", table_name="predictions")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("performance")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("sampling_stratum")
        batch.drop_column("inclusion_probability")
