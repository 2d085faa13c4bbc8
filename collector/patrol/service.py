"""The patrol service in the collector: the schedule, the queue of runs, and what happens after a run.

Every tick it queues the checklists whose cron time came (in the checklist's time zone; a time
missed while the collector was down is run once, late), runs queued runs one at a time, marks
abnormal results whose fault a runbook fixed as handled, and sends the director the report's
summary when a run is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from collector.patrol.model import Checklist
from collector.patrol.runner import PatrolRunner
from collector.store import patrol as p
from collector.store import runbooks as rb
from collector.supervise import every

logger = structlog.get_logger("schoolops.patrol")
SCHEDULE = "schedule"


class PatrolService:
    def __init__(self, store: Any, runner: PatrolRunner, checklists: Mapping[str, Checklist], *,
                 on_done: Callable[[int], Any] | None = None, tick_interval: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.runner, self.checklists = store, runner, checklists
        self.on_done = on_done
        self.tick_interval, self.clock = tick_interval, clock
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
        await self.store.run(self._mark_handled)
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

    def _mark_handled(self, conn: Connection) -> None:
        """An abnormal result whose fault a runbook then cleared: handled during the patrol."""
        for run in p.list_runs(conn, limit=5):
            for result in p.results(conn, run.id):
                if result.handling != "recorded" or result.fault is None or result.fault in self.runner.engine.faults:
                    continue
                fixed = [x for x in rb.list_runs(conn, asset=result.asset, limit=20)
                         if x.fault == result.fault and x.state == "succeeded"]
                if fixed:
                    p.update_result(conn, result.id, handling="handled", handler=f"runbook {fixed[0].runbook}",
                                    note=f"fixed by runbook {fixed[0].runbook} (run {fixed[0].id})")


def _queue(conn: Connection, checklist: str, started_by: str, now: float) -> int:
    return p.create_run(conn, checklist, started_by, now)
