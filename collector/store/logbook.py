"""The asset log: lines of note per asset, kept for a few weeks (queries only).

What goes in: the lines an agent's log watch matched (source ``log:WATCH``), the traps a device
sent (``trap``), configuration changes the backups saw (``config``). The patrol report summarises
them per asset for the period since the previous patrol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store.tables import asset_log

MAX_TEXT = 1000  # characters of one line kept


@dataclass(frozen=True)
class LogEntry:
    asset: str
    source: str
    text: str
    at: float


@dataclass(frozen=True)
class AssetLog:
    """One asset's lines in a period: how many per source, and the latest few."""

    asset: str
    counts: dict[str, int] = field(default_factory=dict)
    latest: tuple[LogEntry, ...] = ()  # oldest first

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def record(conn: Connection, entries: list[LogEntry]) -> None:
    if entries:
        conn.execute(asset_log.insert(), [{"asset": e.asset, "source": e.source[:80], "text": e.text[:MAX_TEXT],
                                           "at": e.at} for e in entries])


def summary(conn: Connection, start: float, end: float, *, latest: int = 5) -> list[AssetLog]:
    """Per asset (by name), the lines with ``start < at <= end``: counts by source and the ``latest`` newest."""
    period = (asset_log.c.at > start) & (asset_log.c.at <= end)
    counts: dict[str, dict[str, int]] = {}
    for row in conn.execute(sa.select(asset_log.c.asset, asset_log.c.source, sa.func.count())
                            .where(period).group_by(asset_log.c.asset, asset_log.c.source)):
        counts.setdefault(row[0], {})[row[1]] = int(row[2])
    ranked = (sa.select(asset_log, sa.func.row_number().over(partition_by=asset_log.c.asset,
                                                            order_by=(asset_log.c.at.desc(), asset_log.c.id.desc()))
                        .label("n")).where(period).subquery())
    newest: dict[str, list[LogEntry]] = {}
    for row in conn.execute(sa.select(ranked).where(ranked.c.n <= latest).order_by(ranked.c.at, ranked.c.id)):
        newest.setdefault(row.asset, []).append(LogEntry(row.asset, row.source, row.text, row.at))
    return [AssetLog(asset, dict(sorted(by_source.items())), tuple(newest.get(asset, ())))
            for asset, by_source in sorted(counts.items())]


def prune(conn: Connection, before: float) -> int:
    """Forget the lines older than ``before``; how many went."""
    return int(conn.execute(asset_log.delete().where(asset_log.c.at < before)).rowcount)
