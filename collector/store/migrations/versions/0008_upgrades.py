"""Upgrades: each request (pre-checks only, the upgrade, a rollback by hand), its approval and its
steps and checks per asset and phase.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "upgrades",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("plan_text", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("of_upgrade", sa.Integer),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("approval_role", sa.String(16)),
        sa.Column("expires_at", sa.Float),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.Float),
        sa.Column("decision_note", sa.Text),
        sa.Column("not_before", sa.Float),
        sa.Column("window_id", sa.Integer),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("result", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_table(
        "upgrade_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("upgrade_id", sa.Integer, nullable=False, index=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("batch", sa.Integer),
        sa.Column("asset", sa.String(63), nullable=False),
        sa.Column("name", sa.String(160), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_status", sa.Integer),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upgrade_steps")
    op.drop_table("upgrades")
