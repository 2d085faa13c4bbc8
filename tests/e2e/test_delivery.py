"""A real agent reporting to a real collector: exactly once through crashes, spool bounds, order."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support import Agent, Collector, metric_value, wait_until


def applied(collector: Collector, asset: str) -> int:
    row = collector.assets().get(asset)
    return int(row["reports_applied"]) if row else 0


def settle(agent: Agent) -> int:
    """Stop the agent once its spool is empty; return the last sequence number it produced."""
    wait_until(lambda: not agent.spooled(), timeout=30, what="the agent's spool to drain")
    assert agent.stop() == 0, agent.process.log() if agent.process else ""
    assert not agent.spooled()
    return int(agent.state()["last_seq"])


def test_every_report_applied_exactly_once_across_collector_crashes(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    agent = make_agent(collector, "web-01").start()
    wait_until(lambda: applied(collector, "web-01") >= 3, timeout=30, what="first reports")

    for _ in range(3):
        collector.kill()  # SIGKILL: whatever was in flight is lost on the collector's side
        time.sleep(2.5)  # the agent keeps collecting and spools
        before = int(agent.state()["last_seq"])
        collector.start()
        wait_until(lambda before=before: applied(collector, "web-01") >= before, timeout=30, what="the spool to replay")

    last_seq = settle(agent)
    (stream,) = collector.assets()["web-01"]["streams"]
    assert stream["last_seq"] == last_seq
    assert stream["applied"] == last_seq  # every one of 1..last_seq, none twice (seqs only ever rise)
    assert stream["missing"] == 0
    assert last_seq >= 10


def test_spool_fills_while_collector_is_down_then_drains_in_order(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    token = collector.token("web-02")
    collector.stop()
    agent = make_agent(collector, "web-02", token_file=token).start()
    wait_until(lambda: len(agent.spooled()) >= 5, timeout=30, what="five reports in the spool")
    waiting = len(agent.spooled())

    collector.start()
    # the agent counts what it delivered from the spool, and says so in its next reports
    wait_until(
        lambda: (metric_value(collector.metrics(), "schoolops_agent_spool_replayed_total", asset="web-02") or 0) >= waiting,
        timeout=20, what="the replay count in the agent's reports",
    )
    last_seq = settle(agent)
    row = collector.assets()["web-02"]
    assert row["reports_applied"] == last_seq >= waiting
    assert row["duplicates"] == 0 and row["missing"] == 0  # in order: an out-of-order one would count as a duplicate


def test_spool_size_bound_drops_oldest_and_counts_them(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    token = collector.token("web-03")
    collector.stop()
    max_bytes = 6000
    agent = make_agent(
        collector, "web-03", token_file=token,
        extra={"spool": {"max_bytes": max_bytes},
               "probes": {"filesystems": False, "disks": False, "network": False, "temperatures": False}},
    ).start()
    wait_until(lambda: agent.state().get("dropped_total", 0) >= 3, timeout=40, what="the spool bound to drop reports")
    sizes = [p.stat().st_size for p in agent.spooled()]
    assert sum(sizes) <= max_bytes

    collector.start()
    wait_until(lambda: not agent.spooled(), timeout=30, what="the agent's spool to drain")
    dropped = int(agent.state()["dropped_total"])
    wait_until(  # reports made after the drain carry the final count
        lambda: metric_value(collector.metrics(), "schoolops_agent_spool_dropped_total", asset="web-03") == dropped,
        timeout=20, what="the dropped count in the agent's reports",
    )
    last_seq = settle(agent)
    assert int(agent.state()["dropped_total"]) == dropped  # no more drops once the collector answered
    row = collector.assets()["web-03"]
    assert row["reports_applied"] == last_seq - dropped
    assert row["missing"] == dropped  # the collector sees exactly the gap the agent dropped
    assert row["duplicates"] == 0


def test_agent_restart_keeps_the_spool_and_the_sequence(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    token = collector.token("web-04")
    collector.stop()
    agent = make_agent(collector, "web-04", token_file=token).start()
    wait_until(lambda: len(agent.spooled()) >= 3, timeout=30, what="three spooled reports")
    assert agent.stop() == 0
    kept = [p.name for p in agent.spooled()]
    stream = agent.state()["stream"]

    agent.start()
    collector.start()
    last_seq = settle(agent)
    assert agent.state()["stream"] == stream
    row = collector.assets()["web-04"]
    assert row["reports_applied"] == last_seq > len(kept)
    assert row["missing"] == 0 and row["duplicates"] == 0


def test_a_report_the_collector_refuses_for_good_is_set_aside_not_retried(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    # reports bigger than the collector accepts: 413 for each, which no retry can fix
    collector = start_collector(extra={"ingest": {"max_body_bytes": "1KiB"}})
    agent = make_agent(collector, "web-05").start()
    def set_aside() -> list[dict[str, object]]:
        return [e for e in agent.log_events() if e.get("event") == "report_rejected"]

    events = wait_until(lambda: len(set_aside()) >= 3 and set_aside(), timeout=30, what="three reports set aside")
    assert events[0]["status"] == 413 and "exceeds the limit of 1024 bytes" in events[0]["reason"]
    assert [e["seq"] for e in events] == [1, 2, 3]  # each refused once, then the next one
    assert len(list((agent.state_dir / "rejected").glob("*.json"))) >= 3
    assert len(agent.spooled()) <= 1
    assert "web-05" not in collector.assets()


def test_the_agent_listens_on_no_port(start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]) -> None:
    import psutil

    collector = start_collector()
    agent = make_agent(collector, "web-06").start()
    wait_until(lambda: applied(collector, "web-06") >= 2, what="reports")
    process = psutil.Process(agent.process.pid)  # type: ignore[union-attr]
    assert [c for c in process.net_connections(kind="all") if c.status == psutil.CONN_LISTEN] == []
    assert [c for c in process.net_connections(kind="udp")] == []
