"""The engine against a real SQLite store: two collectors or a restart never open an incident twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import sqlalchemy as sa

from collector.calendar import SchoolCalendar
from collector.fleet import AssetView, Fleet, Labels
from collector.incidents.engine import EngineSettings, IncidentEngine
from collector.rules.loader import load_rules
from collector.settings import SHIPPED_RULES
from collector.store.sql import SqlStore, sqlite_url
from collector.store.tables import faults, incident_events, incidents
from schoolops.wire import SCHEMA_VERSION, Filesystem, Report

GIB = 1024**3


def full_disk_view(used_ratio: float) -> AssetView:
    size = 100 * GIB
    report = Report(
        schema=SCHEMA_VERSION, asset="web-01", stream="ab" * 8, seq=1, collected_at=time.time(), interval=15.0,
        agent_version="test",
        filesystems=[Filesystem(device="/dev/vda", mountpoint="/", fstype="ext4", size=size,
                                free=int(size * (1 - used_ratio)), avail=int(size * (1 - used_ratio)),
                                files=1000, files_free=900)],
    )
    return AssetView("web-01", Labels(site="main", role="db", tier="important"), report=report, received_at=time.time())


def engine(db: Path, view: AssetView) -> IncidentEngine:
    fleet = Fleet()
    fleet.assets[view.name] = view
    return IncidentEngine(SqlStore.open(sqlite_url(db)), fleet, load_rules(SHIPPED_RULES), SchoolCalendar.default(),
                          settings=EngineSettings(quiet_period=1.0))


def count(db: Path) -> tuple[int, int, list[str]]:
    with sa.create_engine(sqlite_url(db)).connect() as conn:
        opened = conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar_one()
        active = conn.execute(sa.select(sa.func.count()).where(faults.c.active.is_(True))).scalar_one()
        kinds = [k for (k,) in conn.execute(sa.select(incident_events.c.kind).order_by(incident_events.c.id))]
    return opened, active, kinds


async def test_two_collectors_firing_the_same_fault_open_one_incident(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    view = full_disk_view(0.96)
    first, second = engine(db, view), engine(db, view)
    await asyncio.gather(first.load(), second.load())
    await asyncio.gather(first.on_report(view), second.on_report(view))
    opened, active, kinds = count(db)
    assert opened == 1 and active == 1
    assert kinds.count("opened") == 1  # the second joined the live incident instead of opening another
    await asyncio.gather(first.store.close(), second.store.close())


async def test_a_restarted_collector_continues_the_same_incident(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    view = full_disk_view(0.96)
    before = engine(db, view)
    await before.load()
    await before.on_report(view)
    await before.store.close()

    after = engine(db, view)  # a new process: the active fault comes back from the store
    await after.load()
    assert set(after.faults) == {"filesystem_usage|web-01|/"}
    await after.on_report(view)
    opened, active, kinds = count(db)
    assert (opened, active, kinds.count("opened"), kinds.count("notify")) == (1, 1, 1, 1)  # nothing sent twice

    freed = after.fleet.assets["web-01"] = full_disk_view(0.50)  # as ingest updates the fleet before the engine runs
    await after.on_report(freed)  # freed: the fault clears, the quiet period runs
    await asyncio.sleep(1.1)
    await after.tick()
    opened, active, kinds = count(db)
    assert active == 0 and kinds[-1] == "resolve", kinds
    await after.store.close()
