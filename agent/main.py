"""schoolops-agent: collect → spool → deliver, every interval, until told to stop.

Each report is written to the on-disk spool before any attempt to send it, and leaves the spool
only when the collector has acknowledged it; the sequence number is saved before sending. So a
crash, a restart or an unreachable collector never loses a report, and the collector can apply
each one exactly once.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import msgspec

import schoolops
from agent import AgentError, log
from agent.config import AgentConfig, load
from agent.probes import ProbeState, build_probes
from agent.shipper import Answer, Outcome, Shipper
from agent.spool import Spool
from agent.state import AgentState, write_atomic
from schoolops import ConfigError
from schoolops.wire import SCHEMA_VERSION, AssetLabels, ProbeError, Report, SpoolStats, encode_report

logger = log.get_logger("schoolops.agent")

REJECTED_KEPT = 50  # reports the collector refused for good, kept for a person to inspect


class Backoff:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s … up to ``maximum``, each × U(0.5, 1)."""

    def __init__(self, maximum: float, base: float = 1.0) -> None:
        self.maximum = maximum
        self.base = base
        self.failures = 0

    def next_delay(self, at_least: float | None = None) -> float:
        delay = min(self.maximum, self.base * 2**self.failures) * random.uniform(0.5, 1.0)
        self.failures = min(self.failures + 1, 30)
        return max(delay, at_least or 0.0)

    def reset(self) -> None:
        self.failures = 0


class Agent:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = load(config_path)
        self.state_dir = Path(self.config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = AgentState.load(self.state_dir / "state.json")
        self.spool = self._make_spool(self.config)
        self.state.last_seq = max(self.state.last_seq, self.spool.last_seq())
        self.probe_state = ProbeState(self.state.probes)
        self.probes = build_probes(self.config.probes, self.probe_state)
        self.shipper = Shipper(self.config.collector, self.config.collector.read_token())
        self.backoff = Backoff(float(self.config.collector.retry_max))
        self.wake = threading.Event()
        self.stopping = False
        self.reload_requested = False
        self.last_failure: str | None = None

    def _make_spool(self, config: AgentConfig) -> Spool:
        return Spool(
            self.state_dir / "spool", max_bytes=int(config.spool.max_bytes), max_age=float(config.spool.max_age)
        )

    # --- collecting -------------------------------------------------------------------------
    def collect(self) -> Report:
        config = self.config
        pending, pending_bytes = self.spool.stats()
        report = Report(
            schema=SCHEMA_VERSION,
            asset=config.asset_name,
            stream=self.state.stream,
            seq=self.state.next_seq(),
            collected_at=time.time(),
            interval=float(config.interval),
            agent_version=schoolops.__version__,
            labels=AssetLabels(site=config.asset.site, role=config.asset.role, tier=config.asset.tier),
            spool=SpoolStats(
                pending=pending,
                pending_bytes=pending_bytes,
                dropped_total=self.state.dropped_total,
                replayed_total=self.state.replayed_total,
            ),
        )
        for probe in self.probes:
            try:
                setattr(report, probe.name, probe.collect())
            except Exception as exc:  # one failing probe must not cost the whole report
                logger.warning("probe_failed", probe=probe.name, error=str(exc))
                report.errors.append(ProbeError(probe=probe.name, message=f"{exc.__class__.__name__}: {exc}"[:4096]))
        return report

    def collect_and_spool(self) -> None:
        report = self.collect()
        dropped = self.spool.put(report.seq, encode_report(report))
        if dropped:
            self.state.dropped_total += dropped
            logger.warning("spool_bound_hit", dropped=dropped, dropped_total=self.state.dropped_total)
        self.state.save()

    # --- delivering -------------------------------------------------------------------------
    def drain(self) -> float | None:
        """Send spooled reports oldest first; return seconds to wait before retrying, or None when empty."""
        while not self.stopping and not self.reload_requested:
            item = self.spool.oldest()
            if item is None:
                return None
            seq, body = item
            answer = self.shipper.send(body)
            if answer.outcome is Outcome.DELIVERED:
                self._delivered(seq)
            elif answer.outcome is Outcome.REJECTED:
                self._set_aside(seq, body, answer)
            else:
                return self._failed(answer)
            if self.wake.is_set():
                return 0.0  # a signal arrived: let the loop look at it
        return 0.0

    def _delivered(self, seq: int) -> None:
        self.spool.remove(seq)
        if seq <= self.state.replay_floor:
            self.state.replayed_total += 1
        if self.last_failure is not None:
            logger.info("collector_reachable_again", seq=seq, after=self.last_failure)
            self.last_failure = None
        self.backoff.reset()

    def _failed(self, answer: Answer) -> float:
        self.state.replay_floor = max(self.state.replay_floor, self.spool.last_seq())
        self.state.save()
        delay = self.backoff.next_delay(at_least=answer.retry_after)
        event = "collector_refused_token" if answer.outcome is Outcome.REFUSED else "report_send_failed"
        if answer.reason != self.last_failure:  # say it once per cause, not once per retry
            level = logger.error if answer.outcome is Outcome.REFUSED or "certificate" in answer.reason else logger.warning
            level(event, status=answer.status, reason=answer.reason, retry_in=round(delay, 1))
        self.last_failure = answer.reason
        return delay

    def _set_aside(self, seq: int, body: bytes, answer: Answer) -> None:
        rejected = self.state_dir / "rejected"
        rejected.mkdir(exist_ok=True, mode=0o700)
        write_atomic(rejected / f"{seq:020d}.json", body)
        for old in sorted(rejected.glob("*.json"))[:-REJECTED_KEPT]:
            old.unlink(missing_ok=True)
        self.spool.remove(seq)
        logger.error("report_rejected", seq=seq, status=answer.status, reason=answer.reason, kept_in=str(rejected))

    # --- running ----------------------------------------------------------------------------
    def reload(self) -> None:
        self.reload_requested = False
        try:
            config = load(self.config_path)
            token = config.collector.read_token()
        except ConfigError as exc:
            logger.error("config_reload_failed", error=str(exc), keeping="previous config")
            return
        if Path(config.state_dir) != self.state_dir:
            logger.error("config_reload_failed", error="state_dir cannot change while running; restart the agent")
            return
        self.shipper.close()
        self._close_probes()
        self.config = config
        self.spool = self._make_spool(config)
        self.probes = build_probes(config.probes, self.probe_state)
        self.shipper = Shipper(config.collector, token)
        self.backoff = Backoff(float(config.collector.retry_max))
        logger.info("config_reloaded", path=str(self.config_path))

    def _close_probes(self) -> None:
        for probe in self.probes:
            close = getattr(probe, "close", None)  # probes holding files (log watches) release them
            if close is not None:
                close()

    def run(self) -> None:
        logger.info(
            "agent_started", asset=self.config.asset_name, collector=self.config.collector.url,
            interval=float(self.config.interval), pending=self.spool.stats()[0], stream=self.state.stream,
        )
        next_collect = time.monotonic()
        retry_at = 0.0
        while not self.stopping:
            if self.reload_requested:
                self.reload()
                retry_at = 0.0
            now = time.monotonic()
            if now >= next_collect:
                self.collect_and_spool()
                next_collect = max(next_collect + float(self.config.interval), now)
            if now >= retry_at:
                delay = self.drain()
                retry_at = time.monotonic() + delay if delay is not None else next_collect
            self.state.save()
            timeout = max(0.0, min(next_collect, retry_at) - time.monotonic())
            self.wake.wait(timeout)
            self.wake.clear()
        self.shipper.close()
        self._close_probes()
        self.state.save()
        logger.info("agent_stopped", pending=self.spool.stats()[0])

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.stopping = True
            self.wake.set()

        def hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload_requested = True
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="schoolops-agent", description="Report this host's health to a schoolops collector."
    )
    parser.add_argument("--config", required=True, type=Path, help="the agent's YAML config file")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--once", action="store_true", help="collect one report, print it as JSON, send nothing")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"schoolops-agent: {exc}", file=sys.stderr)
        return 2
    log.configure(config.log.level, config.log.format)
    if args.check:
        print(f"{args.config}: OK (asset {config.asset_name}, collector {config.collector.url})")
        return 0
    try:
        agent = Agent(args.config)
        if args.once:
            sys.stdout.buffer.write(msgspec.json.format(encode_report(agent.collect())) + b"\n")
            return 0
        agent.install_signal_handlers()
        agent.run()
    except (AgentError, ConfigError) as exc:
        print(f"schoolops-agent: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
