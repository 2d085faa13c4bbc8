"""The store: one interface, SQLite by default (PostgreSQL later through the same code).

State changes are compare-and-set, so a restart or a second collector never applies one twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from collector import CollectorError


class StoreError(CollectorError):
    pass


class ApplyOutcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before (a replay or a retry after a lost answer): acknowledged, not applied


@dataclass(frozen=True)
class ApplyResult:
    outcome: ApplyOutcome
    missing: int = 0  # sequence numbers skipped since the last applied report (dropped by the agent)


@dataclass(frozen=True)
class AgentToken:
    id: str
    asset: str
    secret_hash: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None


@dataclass(frozen=True)
class Asset:
    name: str
    kind: str
    site: str | None
    role: str | None
    tier: str | None
    labels_source: str  # "agent" or "inventory": inventory labels are never overwritten by an agent
    parents: tuple[str, ...]
    created_at: float
    last_report_at: float | None


@dataclass(frozen=True)
class ReportStream:
    asset: str
    stream: str
    last_seq: int
    applied: int
    duplicates: int
    missing: int
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class LatestReport:
    asset: str
    received_at: float
    body: bytes


@dataclass(frozen=True)
class IncomingReport:
    """What ingest hands to the store: identity, labels as the agent sent them, and the raw body."""

    asset: str
    stream: str
    seq: int
    site: str | None
    role: str | None
    tier: str | None
    received_at: float
    body: bytes


@dataclass(frozen=True)
class InventoryAsset:
    name: str
    kind: str
    site: str | None
    role: str | None
    tier: str | None
    parents: tuple[str, ...]


class Store(Protocol):
    async def apply_report(self, report: IncomingReport) -> ApplyResult: ...
    async def find_token(self, token_id: str) -> AgentToken | None: ...
    async def touch_token(self, token_id: str, now: float) -> None: ...
    async def create_token(self, token: AgentToken) -> None: ...
    async def revoke_token(self, token_id: str, now: float) -> bool: ...
    async def list_tokens(self) -> list[AgentToken]: ...
    async def list_assets(self) -> list[Asset]: ...
    async def list_streams(self, asset: str | None = None) -> list[ReportStream]: ...
    async def latest_reports(self) -> list[LatestReport]: ...
    async def sync_inventory(self, assets: list[InventoryAsset], now: float) -> None: ...
    async def close(self) -> None: ...
