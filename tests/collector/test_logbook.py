"""The asset log: what goes in (agents' matched log lines, traps, configuration changes) and the summary
per asset for a period, against a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector import logbook
from collector.network.traps import TrapKind, trap_event
from collector.store.logbook import LogEntry, prune, record, summary
from collector.store.sql import SqlStore, sqlite_url
from schoolops.wire import SCHEMA_VERSION, LogLine, LogWatch, Report


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    store = SqlStore.open(sqlite_url(tmp_path / "db.sqlite"))  # migrated
    engine = sa.create_engine(sqlite_url(tmp_path / "db.sqlite"))
    with engine.begin() as connection:
        yield connection
    engine.dispose()
    asyncio.run(store.close())


def test_the_summary_counts_each_assets_lines_by_source_and_keeps_the_latest_few_in_order(conn: sa.Connection) -> None:
    record(conn, [LogEntry("web-01", "log:ssh-auth", f"Failed password for root #{n}", 100.0 + n) for n in range(8)])
    record(conn, [LogEntry("web-01", "log:kernel", "I/O error, dev sda", 106.5),
                  LogEntry("sw-01", "trap", "link down port1", 103.0),
                  LogEntry("sw-01", "trap", "old line", 50.0),  # before the period
                  LogEntry("db-01", "log:mysql", "after the period", 300.0)])
    found = {log.asset: log for log in summary(conn, 100.0, 200.0, latest=3)}
    assert set(found) == {"web-01", "sw-01"}
    web = found["web-01"]
    assert web.counts == {"log:kernel": 1, "log:ssh-auth": 7} and web.total == 8  # 100.0 itself is not after start
    assert [e.text for e in web.latest] == ["Failed password for root #6", "I/O error, dev sda", "Failed password for root #7"]
    assert [e.text for e in found["sw-01"].latest] == ["link down port1"]


def test_long_lines_are_cut_and_pruning_forgets_only_the_old(conn: sa.Connection) -> None:
    record(conn, [LogEntry("web-01", "log:app", "x" * 5000, 10.0), LogEntry("web-01", "log:app", "new", 20.0)])
    assert prune(conn, 15.0) == 1
    [log] = summary(conn, 0.0, 100.0)
    assert [e.text for e in log.latest] == ["new"]
    record(conn, [LogEntry("web-01", "log:app", "y" * 5000, 30.0)])
    assert len(summary(conn, 25.0, 100.0)[0].latest[0].text) == 1000


def test_an_agents_matched_lines_and_the_count_over_its_rate_limit_become_entries() -> None:
    report = Report(schema=SCHEMA_VERSION, asset="web-01", stream="a" * 32, seq=1, collected_at=1.0, interval=60,
                    agent_version="t", logs=[
                        LogWatch(name="ssh-auth", path="/var/log/auth.log", matches_total=25, suppressed=5,
                                 lines=[LogLine(pattern="Failed password", line="Failed password for root from 10.0.0.9")]),
                        LogWatch(name="quiet", path="/var/log/syslog", matches_total=0)])
    entries = logbook.from_report(report, 500.0)
    assert entries == [
        LogEntry("web-01", "log:ssh-auth", "Failed password for root from 10.0.0.9", 500.0),
        LogEntry("web-01", "log:ssh-auth", "(5 more matching lines over the rate limit)", 500.0)]


def test_traps_and_configuration_changes_read_as_people_say_them() -> None:
    down = trap_event([("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.1.1.5.3"), ("1.3.6.1.2.1.2.2.1.1.3", "3"),
                       ("1.3.6.1.2.1.31.1.1.1.1.3", "port1")], received_at=7.0, source="10.0.0.2", version="2c",
                      principal="public")
    assert down.kind is TrapKind.LINK_DOWN
    assert logbook.from_trap("sw-01", down) == LogEntry("sw-01", "trap", "link down port1 from 10.0.0.2", 7.0)
    other = trap_event([("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.4.1.9.9.43.2.0.1")], received_at=8.0, source="10.0.0.2",
                       version="2c", principal="public")
    assert logbook.from_trap("sw-01", other).text == "trap 1.3.6.1.4.1.9.9.43.2.0.1 from 10.0.0.2"
    assert logbook.config_change("sw-01", 2, 1, "admin", 9.0).text == "configuration changed by admin (+2 -1 lines)"
