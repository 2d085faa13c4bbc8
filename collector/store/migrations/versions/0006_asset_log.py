"""The asset log (lines of note from agents' log watches, device traps, configuration changes) and the
number of checks a patrol run has, for its progress.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "asset_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(63), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_asset_log_at", "asset_log", ["at"])
    op.create_index("ix_asset_log_asset_at", "asset_log", ["asset", "at"])
    with op.batch_alter_table("patrol_runs") as batch:
        batch.add_column(sa.Column("total", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("patrol_runs") as batch:
        batch.drop_column("total")
    op.drop_index("ix_asset_log_asset_at", "asset_log")
    op.drop_index("ix_asset_log_at", "asset_log")
    op.drop_table("asset_log")
