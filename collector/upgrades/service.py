"""The upgrade service in the collector: asks approvers, lets requests lapse, starts what may start.

Every tick it (1) pages the approver role of each new request once, (2) ends requests nobody decided
in time and approved ones whose window passed, and (3) starts queued checks and rollbacks and
approved upgrades whose window has begun — one upgrade at a time, so two plans never change the
same assets at once. At start, an upgrade that was running when the collector stopped is marked
interrupted and its maintenance window ended: a step may have half-run, so it is never resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from collector.notify.model import Language, MessageKind
from collector.runbooks.notices import RunbookNotices
from collector.store import incidents as q
from collector.store import upgrades as u
from collector.supervise import every
from collector.upgrades import report
from collector.upgrades.runner import UpgradeRunner

logger = structlog.get_logger("schoolops.upgrades")

_ASK = {
    "en": ("[schoolops] Approve upgrade {plan}? (request {id})",
           ("{who} asks to run upgrade plan {plan}: {description}\nWhy: {reason}\nAssets: {assets}\nWindow: {window}\n\n"
           "See every step: schoolops upgrade show {id}\nApprove: schoolops upgrade approve {id} --as YOUR_ID\n"
           "Deny: schoolops upgrade deny {id} --as YOUR_ID\nThe request lapses at {expires}.")),
    "zh-CN": ("[schoolops] 请批准系统升级 {plan}（申请 {id}）",
              ("{who} 申请执行升级计划 {plan}：{description}\n原因：{reason}\n资产：{assets}\n时间窗口：{window}\n\n"
              "查看全部步骤：schoolops upgrade show {id}\n批准：schoolops upgrade approve {id} --as 您的ID\n"
              "拒绝：schoolops upgrade deny {id} --as 您的ID\n申请在 {expires} 失效。")),
    "zh-TW": ("[schoolops] 請核准系統升級 {plan}（申請 {id}）",
              ("{who} 申請執行升級計畫 {plan}：{description}\n原因：{reason}\n資產：{assets}\n時間窗口：{window}\n\n"
              "查看全部步驟：schoolops upgrade show {id}\n核准：schoolops upgrade approve {id} --as 您的ID\n"
              "拒絕：schoolops upgrade deny {id} --as 您的ID\n申請在 {expires} 失效。")),
}


class UpgradeService:
    def __init__(self, store: Any, runner: UpgradeRunner, notices: RunbookNotices, *, timezone: str = "Asia/Shanghai",
                 tick_interval: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.store, self.runner, self.notices = store, runner, notices
        self.timezone, self.tick_interval, self.clock = timezone, tick_interval, clock
        self._tasks: dict[int, asyncio.Task[str]] = {}
        self._modes: dict[int, str] = {}

    async def start(self) -> None:
        await self.store.run(self._recover)

    def _recover(self, conn: Connection) -> None:
        now = self.clock()
        for record in u.list_upgrades(conn, states=("running",), limit=1000):
            if record.window_id is not None:
                q.end_window(conn, record.window_id, now)
            u.move(conn, record.id, "running", "interrupted", finished_at=now,
                   result="the collector stopped during the upgrade; it was not resumed because a step may have "
                          "half-run: check the assets, then roll back (schoolops upgrade rollback) or run it again")
            q.audit(conn, now, "schoolops", "upgrade.interrupted", f"upgrade:{record.id}", {"plan": record.plan})

    async def run(self) -> None:
        await every(self.tick_interval, self.tick, name="upgrades")

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def tick(self) -> None:
        await self.store.run(self._housekeeping)
        startable = await self.store.run(lambda c: u.list_upgrades(c, states=u.STARTABLE, limit=100))
        now = self.clock()
        changing = any(not t.done() for i, t in self._tasks.items() if self._modes.get(i) != "check")
        for record in sorted(startable, key=lambda r: r.id):
            if record.id in self._tasks:
                continue
            if record.mode != "check":
                if changing or (record.not_before is not None and now < record.not_before):
                    continue
                changing = True
            self._modes[record.id] = record.mode
            task = asyncio.create_task(self.runner.execute(record.id), name=f"upgrade-{record.id}")
            self._tasks[record.id] = task
            task.add_done_callback(lambda _t, i=record.id: self._forget(i))

    def _forget(self, upgrade_id: int) -> None:
        self._tasks.pop(upgrade_id, None)
        self._modes.pop(upgrade_id, None)

    def _housekeeping(self, conn: Connection) -> None:
        now = self.clock()
        for record in u.list_upgrades(conn, states=("waiting_approval", "approved"), limit=1000):
            lapsed = ""
            if record.state == "waiting_approval" and record.expires_at is not None and now >= record.expires_at:
                lapsed = f"nobody with the {record.approval_role} role decided in time"
            window_end = record.outcome.get("window_end")
            if record.not_before is not None and window_end is not None and now >= float(window_end):
                lapsed = "its window passed before it could start"
            if lapsed and u.move(conn, record.id, record.state, "expired", finished_at=now, result=lapsed):
                q.audit(conn, now, "schoolops", "upgrade.expired", f"upgrade:{record.id}", {"reason": lapsed})
                continue
            if record.state == "waiting_approval" and not record.outcome.get("asked_at"):
                self._ask(conn, record, now)

    def _ask(self, conn: Connection, record: u.UpgradeRecord, now: float) -> None:
        out = record.outcome

        def when(at: float | None) -> str:
            return "—" if at is None else datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M")

        def text(language: Language) -> tuple[str, str]:
            subject, body = _ASK.get(language.value, _ASK["en"])
            window = (f"{when(record.not_before)}" if record.not_before else
                      {"zh-CN": "批准后开始", "zh-TW": "核准後開始"}.get(language.value, "starts when approved"))
            values = {"plan": record.plan, "id": record.id, "who": record.requested_by,
                      "description": out.get("description", ""), "reason": out.get("reason", ""),
                      "assets": ", ".join(out.get("assets", [])), "window": window, "expires": when(record.expires_at)}
            return subject.format(**values), body.format(**values)

        sent = self.notices.send(conn, targets=[f"role:{record.approval_role}"], incident_id=None,
                                 key=f"upgrade-approve:{record.id}", kind=MessageKind.PAGE, severity=None, text=text,
                                 now=now)
        u.update(conn, record.id, outcome={**out, "asked_at": now, "asked": str(sent)})


async def send_report(store: Any, notices: RunbookNotices, upgrade_id: int, *, timezone: str) -> None:
    """The director (and whoever asked) get the report in their language; a failed rollback pages on-call too."""
    record, steps = await store.run(lambda c: (u.get(c, upgrade_id), u.steps(c, upgrade_id)))
    if record is None or record.mode == "check":
        return
    out = record.outcome

    def text(language: Language) -> tuple[str, str]:
        body = report.render(record, steps, language.value, description=out.get("description", ""),
                             reason=out.get("reason", ""), reason_source=out.get("reason_source", ""), timezone=timezone)
        return report.subject(record, language.value), body

    targets = ["director", f"person:{record.requested_by}"]
    if record.state in ("rollback_failed", "interrupted"):
        targets.append("primary")
    await store.run(lambda c: notices.send(c, targets=targets, incident_id=None, key=f"upgrade:{upgrade_id}",
                                           kind=MessageKind.SUMMARY, severity=None, text=text, now=time.time()))
