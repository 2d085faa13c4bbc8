"""Notifications: encrypted secrets, the outbox, escalation steps sent, one-click links, channel state, security reports.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, index=True),
        sa.Column("step_key", sa.String(64)),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False, index=True),
        sa.Column("address", sa.String(256)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.Integer),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("ack_url", sa.Text),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("merged_into", sa.Integer),
        sa.Column("contact_index", sa.Integer, nullable=False),
    )
    op.create_table(
        "escalation_steps",
        sa.Column("incident_id", sa.Integer, primary_key=True),
        sa.Column("step_key", sa.String(64), primary_key=True),
        sa.Column("done_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ack_links",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
    )
    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("broken_since", sa.Float),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "security_reports",
        sa.Column("incident_id", sa.Integer, primary_key=True),
        sa.Column("deadline", sa.Float, nullable=False),
        sa.Column("reported_at", sa.Float),
        sa.Column("reported_by", sa.String(64)),
        sa.Column("reference", sa.Text),
    )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("notify_since", sa.Float))  # escalation counts from here; None while held
