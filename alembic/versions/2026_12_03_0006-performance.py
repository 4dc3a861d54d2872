"""performance: fitted references, labels counted, evaluations and incidents

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import storage.base
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("performance_parts") as batch:
        batch.add_column(sa.Column("reference_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("first_ts", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("last_ts", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "performance_references",
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("loss_model", sa.LargeBinary(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("labelled_rows", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_references_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["model_references.id"],
            name=op.f("fk_performance_references_reference_id_model_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reference_id", name=op.f("pk_performance_references")),
    )
    op.create_index(
        op.f("ix_performance_references_model_id"), "performance_references", ["model_id"]
    )
    op.create_table(
        "performance_labels",
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("stratum", sa.String(length=30), nullable=False),
        sa.Column("inclusion_probability", sa.Float(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=False),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_labels_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_performance_labels")),
    )
    op.create_table(
        "performance_incidents",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("bound", sa.Float(), nullable=True),
        sa.Column("opened_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("opened_evaluation_id", sa.BigInteger(), nullable=False),
        sa.Column("last_evaluation_id", sa.BigInteger(), nullable=False),
        sa.Column("closed_evaluation_id", sa.BigInteger(), nullable=True),
        sa.Column("evaluations", sa.Integer(), nullable=False),
        sa.Column("clean_streak", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_incidents_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_incidents")),
    )
    op.create_index(
        "ix_performance_incidents_model_id_status",
        "performance_incidents",
        ["model_id", "status"],
    )
    op.create_table(
        "performance_evaluations",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("first_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("window_start", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_end", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["performance_incidents.id"],
            name=op.f("fk_performance_evaluations_incident_id_performance_incidents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_evaluations_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_evaluations")),
        sa.UniqueConstraint(
            "model_id", "last_block", name=op.f("uq_performance_evaluations_model_id_last_block")
        ),
    )


def downgrade() -> None:
    op.drop_table("performance_evaluations")
    op.drop_index("ix_performance_incidents_model_id_status", table_name="performance_incidents")
    op.drop_table("performance_incidents")
    op.drop_table("performance_labels")
    op.drop_index(op.f("ix_performance_references_model_id"), table_name="performance_references")
    op.drop_table("performance_references")
    with op.batch_alter_table("performance_parts") as batch:
        batch.drop_column("last_ts")
        batch.drop_column("first_ts")
        batch.drop_column("reference_id")
