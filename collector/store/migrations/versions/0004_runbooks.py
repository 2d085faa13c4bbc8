"""Runbooks: runs with their steps, per-asset locks that survive restarts, approvals.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "runbook_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("runbook", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(63), nullable=False, index=True),
        sa.Column("incident_id", sa.Integer, index=True),
        sa.Column("fault", sa.String(256)),
        sa.Column("parent_run", sa.Integer),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(24), nullable=False, index=True),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("next_step", sa.Integer, nullable=False),
        sa.Column("result", sa.Text),
    )
    op.create_table(
        "runbook_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_status", sa.Integer),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
    )
    op.create_table(
        "runbook_locks",
        sa.Column("asset", sa.String(63), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
    )
    op.create_table(
        "runbook_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("decision", sa.String(16)),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.Float),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    for table in ("runbook_approvals", "runbook_locks", "runbook_steps", "runbook_runs"):
        op.drop_table(table)
