"""The patrol schedule fires at the configured time, driven by an injected clock (no waiting): the real
PatrolService and PatrolRunner over a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from collector.fleet import Fleet
from collector.patrol.loader import load_checklists
from collector.patrol.model import Checklist
from collector.patrol.runner import PatrolRunner
from collector.patrol.service import PatrolService
from collector.store import patrol as p
from collector.store.sql import SqlStore, sqlite_url

SCHOOL = ZoneInfo("Asia/Shanghai")
CHECKLIST = """\
name: weekday
title: Weekday patrol
schedule: "30 7 * * 1-5"     # 07:30 on school days
timezone: Asia/Shanghai
sections:
  - id: room
    title: Server room
    items:
      - id: humidity
        check: Humidity
        standard: 40-60 %
        method: {kind: manual}
"""


def at(text: str) -> float:
    """A school-time wall clock reading, e.g. "2026-11-23 07:30:00" (a Monday)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SCHOOL).timestamp()


class Clock:
    def __init__(self, start: str) -> None:
        self.now = at(start)

    def __call__(self) -> float:
        return self.now

    def set(self, text: str) -> None:
        self.now = at(text)


@pytest.fixture
def checklists(tmp_path: Path) -> dict[str, Checklist]:
    folder = tmp_path / "patrol"
    folder.mkdir()
    (folder / "weekday.yaml").write_text(CHECKLIST)
    return load_checklists(folder)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = SqlStore.open(sqlite_url(tmp_path / "schoolops.db"))
    yield opened
    await opened.close()


def service(store: SqlStore, checklists: dict[str, Checklist], clock: Clock, done: list[int]) -> PatrolService:
    runner = PatrolRunner(store, Fleet(), SimpleNamespace(faults={}), checklists, entries=dict,
                          secret=lambda name: "", snmp_get=None, clock=clock)

    async def on_done(run_id: int) -> None:
        done.append(run_id)

    return PatrolService(store, runner, checklists, on_done=on_done, clock=clock)


async def tick_and_finish(patrol: PatrolService) -> None:
    await patrol.tick()
    if patrol._running is not None:
        await asyncio.wait_for(patrol._running, timeout=10)


async def runs(store: SqlStore) -> list[p.PatrolRun]:
    return list(reversed(await store.run(lambda c: p.list_runs(c))))


async def test_the_schedule_fires_at_its_time_once_and_skips_the_days_it_excludes(
    store: SqlStore, checklists: dict[str, Checklist]
) -> None:
    clock, done = Clock("2026-11-23 07:29:00"), []  # Monday
    patrol = service(store, checklists, clock, done)
    await patrol.start()

    clock.set("2026-11-23 07:29:59")
    await tick_and_finish(patrol)
    assert await runs(store) == []

    clock.set("2026-11-23 07:30:00")
    await tick_and_finish(patrol)
    [monday] = await runs(store)
    assert monday.started_by == "schedule" and monday.started_at == at("2026-11-23 07:30:00")
    assert monday.checklist == "weekday" and done == [monday.id]
    [pending] = await store.run(lambda c: p.results(c, monday.id))
    assert (pending.item, pending.status) == ("humidity", "pending")

    for later in ("2026-11-23 07:30:05", "2026-11-23 12:00:00", "2026-11-24 07:29:59"):
        clock.set(later)
        await tick_and_finish(patrol)
    assert len(await runs(store)) == 1  # once a day

    clock.set("2026-11-24 07:30:00")  # Tuesday
    await tick_and_finish(patrol)
    assert [r.started_at for r in await runs(store)][-1] == at("2026-11-24 07:30:00")

    for day in ("2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"):
        clock.set(f"{day} 07:30:00")
        await tick_and_finish(patrol)
        clock.set(f"{day} 18:00:00")
        await tick_and_finish(patrol)
    assert [datetime.fromtimestamp(r.started_at, SCHOOL).strftime("%a %H:%M") for r in await runs(store)] == [
        "Mon 07:30", "Tue 07:30", "Wed 07:30", "Thu 07:30", "Fri 07:30", "Mon 07:30"]  # no weekend runs
    assert all(r.started_by == "schedule" and r.state == "done" for r in await runs(store))


async def test_a_time_missed_while_the_collector_was_down_runs_once_late(
    store: SqlStore, checklists: dict[str, Checklist]
) -> None:
    await store.run(lambda c: p.create_run(c, "weekday", "schedule", at("2026-11-23 07:30:00"), state="reviewed"))
    clock, done = Clock("2026-11-25 10:00:00"), []  # down from Monday until Wednesday 10:00
    patrol = service(store, checklists, clock, done)
    await patrol.start()
    await tick_and_finish(patrol)
    late = await runs(store)
    assert len(late) == 2 and late[-1].started_by == "schedule" and late[-1].started_at == at("2026-11-25 10:00:00")
    clock.set("2026-11-25 23:59:00")
    await tick_and_finish(patrol)
    assert len(await runs(store)) == 2  # not once for Tuesday and again for Wednesday
    clock.set("2026-11-26 07:30:00")
    await tick_and_finish(patrol)
    assert len(await runs(store)) == 3 and done == [r.id for r in (await runs(store))[1:]]


async def test_a_run_cut_off_by_a_restart_is_marked_interrupted_and_a_queued_one_still_runs(
    store: SqlStore, checklists: dict[str, Checklist]
) -> None:
    now = at("2026-11-23 09:00:00")
    cut = await store.run(lambda c: p.create_run(c, "weekday", "li.na", now - 60, state="running"))
    queued = await store.run(lambda c: p.create_run(c, "weekday", "li.na", now - 30))
    clock, done = Clock("2026-11-23 09:00:00"), []
    patrol = service(store, checklists, clock, done)
    await patrol.start()
    await tick_and_finish(patrol)
    states = {r.id: r.state for r in await runs(store)}
    assert states == {cut: "interrupted", queued: "done"} and done == [queued]
