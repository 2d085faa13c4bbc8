"""Faults, incidents with their timeline and preventive measures, maintenance windows, API tokens, audit log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(200), nullable=False, index=True),
        sa.Column("asset", sa.String(63), nullable=False, index=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("acknowledged_at", sa.Float),
        sa.Column("acknowledged_by", sa.String(64)),
        sa.Column("resolved_at", sa.Float),
        sa.Column("resolved_by", sa.String(64)),
        sa.Column("reviewed_at", sa.Float),
        sa.Column("reviewed_by", sa.String(64)),
        sa.Column("closed_at", sa.Float),
        sa.Column("closed_by", sa.String(64)),
        sa.Column("all_cleared_at", sa.Float),
        sa.Column("rca", sa.Text),
        sa.Column("hold", sa.Text),
    )
    # one live (open or acknowledged) incident per fingerprint, whatever the number of collectors
    op.create_index(
        "incidents_one_live_per_fingerprint", "incidents", ["fingerprint"], unique=True,
        sqlite_where=sa.text("state IN ('open', 'acknowledged')"),
        postgresql_where=sa.text("state IN ('open', 'acknowledged')"),
    )
    op.create_table(
        "faults",
        sa.Column("fingerprint", sa.String(200), primary_key=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(63), nullable=False, index=True),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("base_severity", sa.Integer, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("fired_at", sa.Float, nullable=False),
        sa.Column("cleared_at", sa.Float),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), index=True),
        sa.Column("consequence_of", sa.String(63)),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "preventive_measures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        sa.Column("done_at", sa.Float),
        sa.Column("done_by", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recurrence", sa.Text),
        sa.Column("ended_at", sa.Float),
        sa.Column("end_handled_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "fault_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(63)),
        sa.Column("site", sa.String(64)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("incident_id", sa.Integer),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(64), nullable=False, index=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
