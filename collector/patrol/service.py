"""The patrol service in the collector: the schedule, the queue of runs, and what happens after a run.

Every tick it queues the checklists whose cron time came (in the checklist's time zone; a time
missed while the collector was down is run once, late), runs queued runs one at a time, sends the
director the report's summary when a run is done, and checks abnormal results again: one found
normal again is marked handled (by its runbook, if one ran) and its fault clears.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.engine import Connection

from collector.patrol.judge import Finding
from collector.patrol.model import Checklist
from collector.patrol.runner import PatrolRunner
from collector.store import patrol as p
from collector.store import runbooks as rb
from collector.supervise import every

logger = structlog.get_logger("schoolops.patrol")
SCHEDULE = "schedule"
RECHECK_FOR = 86400.0  # abnormal results are checked again for this long after their run


class PatrolService:
    def __init__(self, store: Any, runner: PatrolRunner, checklists: Mapping[str, Checklist], *,
                 on_done: Callable[[int], Any] | None = None, tick_interval: float = 5.0,
                 recheck_interval: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.store, self.runner, self.checklists = store, runner, checklists
        self.on_done = on_done
        self.tick_interval, self.recheck_interval, self.clock = tick_interval, recheck_interval, clock
        self._recheck_at = 0.0
        self._next: dict[str, float] = {}
        self._running: asyncio.Task[None] | None = None

    async def start(self) -> None:
        def interrupted(conn: Connection) -> None:
            for run in p.list_runs(conn, limit=1000):
                if run.state == "running":
                    p.update_run(conn, run.id, state="interrupted", finished_at=self.clock())
        await self.store.run(interrupted)
        last = await self.store.run(lambda c: {r.checklist: r.started_at for r in reversed(p.list_runs(c, limit=1000))})
        now = self.clock()
        for name, checklist in self.checklists.items():
            # a time that came while the collector was down is due once; otherwise the next one
            self._next[name] = checklist.next_run(last.get(name, now))

    async def run(self) -> None:
        await every(self.tick_interval, self.tick, name="patrol")

    async def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()

    async def tick(self) -> None:
        now = self.clock()
        for name, checklist in self.checklists.items():
            if self._next.get(name, now + 1) <= now:
                self._next[name] = checklist.next_run(now)
                await self.store.run(lambda c, n=name: _queue(c, n, SCHEDULE, now))
                logger.info("patrol_scheduled", checklist=name)
        await self.recheck()
        if self._running is None or self._running.done():
            queued = await self.store.run(lambda c: [r for r in p.list_runs(c, limit=50) if r.state == "queued"])
            if queued:
                self._running = asyncio.create_task(self._run(min(r.id for r in queued)), name="patrol-run")

    async def _run(self, run_id: int) -> None:
        await self.runner.run(run_id)
        if self.on_done is not None:
            try:
                await self.on_done(run_id)
            except Exception:
                logger.exception("patrol_report_not_sent", run=run_id)

    async def recheck(self) -> None:
        """Check the abnormal results of each checklist's latest run again (for a day after the run): one
        that is normal now was handled during the patrol — by the runbook that ran for it, or by a person —
        and its fault clears (which is what a runbook started for it waits for)."""
        now = self.clock()
        if now < self._recheck_at:
            return
        self._recheck_at = now + self.recheck_interval
        for name, result in await self.store.run(lambda c: _open_results(c, now - RECHECK_FOR)):
            checklist = self.checklists.get(name)
            finding = await self.runner.recheck(checklist, result) if checklist is not None else None
            if checklist is None or finding is None or finding.status != "normal":
                continue
            await self.runner.clear(result)
            when = datetime.fromtimestamp(self.clock(), ZoneInfo(checklist.timezone)).strftime("%Y-%m-%d %H:%M")
            await self.store.run(lambda c, r=result, f=finding, w=when: _handled(c, r, f, w))
            logger.info("patrol_result_handled", item=result.item, asset=result.asset, key=result.key)


def _open_results(conn: Connection, since: float) -> list[tuple[str, p.PatrolResult]]:
    """(checklist, result) of the abnormal results not handled yet, in each checklist's latest finished run."""
    latest: dict[str, p.PatrolRun] = {}
    for run in p.list_runs(conn, limit=200):
        if run.state in ("done", "signed", "reviewed"):
            latest.setdefault(run.checklist, run)
    return [(run.checklist, result) for run in latest.values() if (run.finished_at or 0) >= since
            for result in p.results(conn, run.id) if result.status == "abnormal" and result.handling == "recorded"]


def _handled(conn: Connection, result: p.PatrolResult, finding: Finding, when: str) -> None:
    """Mark the result handled: by the runbook started for its fault during the patrol, if there was one."""
    ran = [x for x in rb.list_runs(conn, asset=result.asset, limit=50)
           if result.fault is not None and x.fault == result.fault and x.requested_at >= result.at - 1]
    seen = f"normal when checked again at {when}: {finding.evidence}"
    if ran:
        run = ran[0]  # the latest
        p.update_result(conn, result.id, handling="handled", handler=f"runbook {run.runbook}",
                        note=f"fixed by runbook {run.runbook} (run {run.id}); {seen}"[:2000])
    else:
        p.update_result(conn, result.id, handling="handled", note=seen[:2000])


def _queue(conn: Connection, checklist: str, started_by: str, now: float) -> int:
    return p.create_run(conn, checklist, started_by, now)
