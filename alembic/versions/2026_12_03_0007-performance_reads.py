"""performance: a covering index for reading windows (the parts' keys without their sums)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    "model_id",
    "block",
    "kind",
    "model_version",
    "reference_id",
    "first_ts",
    "last_ts",
    "created_at",
    "id",
]


def upgrade() -> None:
    # a window read selects these columns only; in the table they sit after the sums
    # (kilobytes, overflow pages in SQLite), so the index answers without the rows
    op.create_index("ix_performance_parts_read", "performance_parts", COLUMNS, unique=False)
    op.drop_index("ix_performance_parts_lookup", table_name="performance_parts")


def downgrade() -> None:
    op.create_index(
        "ix_performance_parts_lookup", "performance_parts", ["model_id", "block"], unique=False
    )
    op.drop_index("ix_performance_parts_read", table_name="performance_parts")
