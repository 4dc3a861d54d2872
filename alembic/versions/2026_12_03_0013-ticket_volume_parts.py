"""ticket_volume as partial rows: each transaction inserts its own, readers sum them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COUNTS = "model_id, hour, kind, opened, suppressed, expected"


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("hour", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("opened", sa.BigInteger(), nullable=False),
        sa.Column("suppressed", sa.BigInteger(), nullable=False),
        sa.Column("expected", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_ticket_volume_model_id_models"),
            ondelete="CASCADE",
        ),
    ]


def _set_aside() -> None:
    """Rename the table (and on PostgreSQL its primary key's index, whose name is global)."""
    op.rename_table("ticket_volume", "ticket_volume_old")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ticket_volume_old RENAME CONSTRAINT pk_ticket_volume TO pk_tv_old")


def upgrade() -> None:
    _set_aside()
    op.create_table(
        "ticket_volume",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_volume")),
    )
    op.create_index(
        "ix_ticket_volume_model_id_hour_kind",
        "ticket_volume",
        ["model_id", "hour", "kind"],
        unique=False,
    )
    op.execute(f"INSERT INTO ticket_volume ({_COUNTS}) SELECT {_COUNTS} FROM ticket_volume_old")
    op.drop_table("ticket_volume_old")


def downgrade() -> None:
    op.drop_index("ix_ticket_volume_model_id_hour_kind", table_name="ticket_volume")
    _set_aside()
    op.create_table(
        "ticket_volume",
        *_columns(),
        sa.PrimaryKeyConstraint("model_id", "hour", "kind", name=op.f("pk_ticket_volume")),
    )
    op.execute(
        f"INSERT INTO ticket_volume ({_COUNTS}) SELECT model_id, hour, kind, sum(opened),"
        " sum(suppressed), sum(expected) FROM ticket_volume_old GROUP BY model_id, hour, kind"
    )
    op.drop_table("ticket_volume_old")
