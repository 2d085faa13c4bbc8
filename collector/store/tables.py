"""Table definitions for queries (SQLAlchemy Core). The migrations create them; keep the two in step."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("site", String(64)),
    Column("role", String(64)),
    Column("tier", String(16)),
    Column("labels_source", String(16), nullable=False),
    Column("parents", Text, nullable=False),  # JSON list of asset names
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_report_at", Float),
)

agent_tokens = Table(
    "agent_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("asset", String(63), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
)

report_streams = Table(
    "report_streams",
    metadata,
    Column("asset", String(63), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

asset_latest = Table(
    "asset_latest",
    metadata,
    Column("asset", String(63), primary_key=True),
    Column("stream", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),
)
