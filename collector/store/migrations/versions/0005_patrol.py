"""Patrol: runs of a checklist and their results, with the patroller's and reviewer's signatures.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "patrol_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("checklist", sa.String(64), nullable=False, index=True),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("signed_by", sa.String(64)),
        sa.Column("signed_at", sa.Float),
        sa.Column("reviewed_by", sa.String(64)),
        sa.Column("reviewed_at", sa.Float),
        sa.Column("review_note", sa.Text),
    )
    op.create_table(
        "patrol_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("section", sa.String(64), nullable=False),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(63), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("handling", sa.String(24), nullable=False),
        sa.Column("handler", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("fault", sa.String(256)),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("patrol_results")
    op.drop_table("patrol_runs")
