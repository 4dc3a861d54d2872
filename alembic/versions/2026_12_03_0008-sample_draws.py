"""label budget by value: every considered record's draw, the budget spent per hour

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket_volume") as batch:
        batch.add_column(
            sa.Column("expected", sa.Float(), server_default=sa.text("0"), nullable=False)
        )
    op.create_table(
        "sample_draws",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", BigIntPK, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("stratum", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("inclusion_probability", sa.Float(), nullable=False),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_sample_draws_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_sample_draws_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_draws")),
    )
    op.create_index("ix_sample_draws_model_id_at", "sample_draws", ["model_id", "at"])
    op.create_index(
        op.f("ix_sample_draws_prediction_id"), "sample_draws", ["prediction_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sample_draws_prediction_id"), table_name="sample_draws")
    op.drop_index("ix_sample_draws_model_id_at", table_name="sample_draws")
    op.drop_table("sample_draws")
    with op.batch_alter_table("ticket_volume") as batch:
        batch.drop_column("expected")
