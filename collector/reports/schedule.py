"""Sending the monthly report: on the 1st of each month, the previous month's, once.

:func:`due_month` is the pure rule; :class:`MonthlyReportService` is the shell in the collector.
Every tick it asks which month is due; when one is, it reads the month from the store, builds the
report in each director's language and writes one message per director to the outbox (the path
the patrol summary takes), and records ``report.monthly.sent`` in the audit log in the same
transaction: a restart, or a second tick, finds the record and sends nothing again. A month that
ended before the first asset was recorded (a new installation) is recorded as having nothing to
report, not sent. Given the collector's link key and address, each message carries a signed link
to the printable report in its reader's language (:mod:`collector.reports.reportweb`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.engine import Connection

from collector.calendar import SchoolCalendar
from collector.notify.model import Language, MessageKind
from collector.notify.oncall import OnCallConfig, directors
from collector.patrol.model import Checklist
from collector.reports import reportweb
from collector.reports.figures import month_bounds, previous_month
from collector.reports.monthly import build, summary_message
from collector.runbooks.notices import RunbookNotices
from collector.store import monthly as store
from collector.supervise import every

logger = structlog.get_logger("schoolops.reports")
SYSTEM = "schoolops"
SEND_HOUR = 8  # local time on the 1st: the director reads it in the morning, not at midnight


def due_month(last_sent_month: str | None, now: float, tz: str, *, hour: int = SEND_HOUR) -> str | None:
    """The month (YYYY-MM) whose report is due at ``now``: from ``hour`` o'clock on the 1st (in ``tz``)
    the previous month's, until it is sent; None when it was sent already or it is not time yet. A
    month missed while the collector was down is sent late, once; months before it are not."""
    local = dt.datetime.fromtimestamp(now, ZoneInfo(tz))
    if local.day == 1 and local.hour < hour:
        return None
    month = previous_month(now, tz)
    if last_sent_month is not None and last_sent_month >= month:
        return None
    return month


class MonthlyReportService:
    def __init__(self, store_: Any, oncall: OnCallConfig, notices: RunbookNotices, *,
                 checklists: Mapping[str, Checklist] | None = None, calendar: SchoolCalendar | None = None,
                 down_rules: Collection[str] = store.DOWN_RULES, clock: Callable[[], float] = time.time,
                 tick_interval: float = 60.0, hour: int = SEND_HOUR, link_key: bytes | None = None,
                 base_url: str | None = None, link_ttl: float = reportweb.LINK_TTL) -> None:
        self.store, self.oncall, self.notices = store_, oncall, notices
        self.link_key, self.base_url, self.link_ttl = link_key, base_url, link_ttl
        self.checklists, self.calendar, self.down_rules = checklists or {}, calendar, down_rules
        self.clock, self.tick_interval, self.hour = clock, tick_interval, hour
        self._last: str | None = None
        self._loaded = False

    async def run(self) -> None:
        await every(self.tick_interval, self.tick, name="monthly-report")

    async def tick(self) -> str | None:
        """Send the report that is due, if any; the month sent (or recorded as empty), else None."""
        now, tz = self.clock(), self.oncall.timezone
        if not self._loaded:
            self._last, self._loaded = await self.store.run(store.last_sent_month), True
        month = due_month(self._last, now, tz, hour=self.hour)
        if month is None:
            return None
        done = await self.store.run(lambda c: self._send(c, month, now))
        self._last = month
        return month if done else None

    def _send(self, conn: Connection, month: str, now: float) -> bool:
        """One transaction: check again, read the month, write the messages and the record."""
        last = store.last_sent_month(conn)
        if last is not None and last >= month:
            return False  # another collector, or an earlier tick, sent it
        tz = self.oncall.timezone
        start, end = month_bounds(month, tz)
        first = store.first_asset_at(conn)
        if first is None or first >= end:
            store.mark_sent(conn, month, now, SYSTEM, {"month": month, "skipped": "nothing recorded before its end"})
            logger.info("monthly_report_skipped", month=month, reason="nothing recorded before its end")
            return True
        bosses = directors(self.oncall)
        data = store.month_data(conn, start, end, as_of=now, directors={p.id for p in bosses},
                                down_rules=self.down_rules)
        names = {person.id: person.name for person in self.oncall.people}
        texts: dict[Language, tuple[str, str]] = {}

        def text(language: Language) -> tuple[str, str]:
            """The message in the reader's language, with a link that opens the report in it."""
            if language not in texts:
                report = build(data, month=month, language=language.value, tz=tz, names=names,
                               checklists=self.checklists, calendar=self.calendar)
                link = (reportweb.report_link(self.base_url, self.link_key, month, language.value, now, self.link_ttl)
                        if self.link_key and self.base_url else None)
                texts[language] = summary_message(report, link, int(self.link_ttl // 86400))
            return texts[language]

        sent = self.notices.send(conn, targets=["director"], incident_id=None, key=f"report.monthly:{month}",
                                 kind=MessageKind.SUMMARY, severity=None, text=text, now=now)
        store.mark_sent(conn, month, now, SYSTEM, {"month": month, "to": sent.names})
        logger.info("monthly_report_sent", month=month, to=sent.names)
        return True
