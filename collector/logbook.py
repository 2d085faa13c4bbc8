"""What goes into the asset log (collector.store.logbook): pure conversions, and the writer the collector wires in.

Lines of note come from three places: the lines an agent's log watch matched (a line of a failed
login, a disk error), the traps a network device sends (link down/up, restarts, authentication
failures), and configuration changes the backups of a device saw. The patrol report summarises
them per asset for the period since the previous patrol.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from collector.network import traps
from collector.store.logbook import LogEntry, prune, record
from schoolops.wire import Report

logger = structlog.get_logger("schoolops.logbook")
KEEP = 35 * 86400.0  # longer than a month: the monthly patrol sees its whole period
_TRAP_WORDS = {
    traps.TrapKind.LINK_DOWN: "link down", traps.TrapKind.LINK_UP: "link up",
    traps.TrapKind.COLD_START: "restarted (cold start)", traps.TrapKind.WARM_START: "restarted (warm start)",
    traps.TrapKind.AUTHENTICATION_FAILURE: "SNMP authentication failure",
}


def from_report(report: Report, at: float) -> list[LogEntry]:
    """The lines the report's log watches matched; a watch over its rate limit says how many it left out."""
    entries = []
    for watch in report.logs or ():
        source = f"log:{watch.name}"
        entries += [LogEntry(report.asset, source, line.line, at) for line in watch.lines]
        if watch.suppressed:
            entries.append(LogEntry(report.asset, source, f"({watch.suppressed} more matching lines over the rate limit)",
                                    at))
    return entries


def from_trap(asset: str, event: traps.TrapEvent, *, interface: str | None = None) -> LogEntry:
    """``interface``: its name as the poll knows it, for a trap that names only the ifIndex."""
    words = _TRAP_WORDS.get(event.kind) or f"trap {event.trap_oid}"
    name = interface or event.interface
    where = f" {name}" if name else ""
    sender = f" from {event.source}" if event.source else ""
    return LogEntry(asset, "trap", f"{words}{where}{sender}", event.received_at)


def config_change(asset: str, added: int, removed: int, changed_by: str | None, at: float) -> LogEntry:
    who = f" by {changed_by}" if changed_by else ""
    return LogEntry(asset, "config", f"configuration changed{who} (+{added} -{removed} lines)", at)


class LogBook:
    """Writes entries to the store; forgets those older than ``keep`` at most once an hour."""

    def __init__(self, store: object, *, keep: float = KEEP, clock: Callable[[], float] = time.time) -> None:
        self.store, self.keep, self.clock = store, keep, clock
        self._pruned_at = 0.0

    async def add(self, entries: list[LogEntry]) -> None:
        if not entries:
            return
        now = self.clock()
        due = now - self._pruned_at >= 3600
        if due:
            self._pruned_at = now

        def write(conn: object) -> None:
            record(conn, entries)  # type: ignore[arg-type]
            if due:
                gone = prune(conn, now - self.keep)  # type: ignore[arg-type]
                if gone:
                    logger.info("asset_log_pruned", lines=gone)

        await self.store.run(write)  # type: ignore[attr-defined]
