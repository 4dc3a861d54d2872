"""performance: loss models fitted in the background (status, training data, claim)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("performance_references") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="ready")
        )
        batch.add_column(sa.Column("fit_data", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("claimed_at", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_performance_references_status", "performance_references", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_performance_references_status", table_name="performance_references")
    with op.batch_alter_table("performance_references") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("fit_data")
        batch.drop_column("status")
