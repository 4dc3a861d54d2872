"""incidents say whether labels are needed to decide them (and the audit is raised)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("drift_incidents", "performance_incidents")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "needs_labels", sa.Boolean(), server_default=sa.text("false"), nullable=False
                )
            )
            batch.add_column(sa.Column("labels_note", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("labels_note")
            batch.drop_column("needs_labels")
