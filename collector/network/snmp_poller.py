"""Polling a fleet of network devices over SNMP: :class:`SnmpPoller` polls each device on its own
cadence, at most ``concurrency`` at a time, with :func:`collector.network.snmp.poll`.

One poll of one device (the session, the errors, the credentials) lives in
:mod:`collector.network.snmp`; this module is the scheduling around it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass

import structlog
from pysnmp.hlapi.v3arch import asyncio as hl

from collector.network.config import SnmpConfig
from collector.network.snmp import (
    RESULTS,
    Credentials,
    PollResult,
    PollState,
    SnmpDeadlineExceeded,
    SnmpError,
    _InternalError,
    poll,
    prepare,
)

logger = structlog.get_logger("schoolops.snmp")


@dataclass(frozen=True)
class SnmpTarget:
    """One device to poll: the asset's name, its address, its SNMP config and resolved credentials."""

    asset: str
    address: str
    config: SnmpConfig
    credentials: Credentials


OnResult = Callable[[str, PollResult, float], Awaitable[None]]


class SnmpPoller:
    """Polls many devices, each on its own ``config.interval``, at most ``concurrency`` at a time.

    Devices that come due together form a *cycle*; a cycle runs as its own task, so a slow or dead
    device never delays the next cycle or the others in it, and a poll is abandoned once it has
    taken its whole interval. Metrics for the exporter: ``last_cycle_seconds``, ``cycles_total``,
    ``overruns_total`` (polls that took longer than their interval) and ``polls_total[result]``.
    """

    def __init__(self, targets: Iterable[SnmpTarget] = (), on_result: OnResult | None = None, *,
                 concurrency: int = 64, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._targets = {t.asset: t for t in targets}
        self._on_result = on_result
        self._semaphore = asyncio.Semaphore(concurrency)
        self._clock, self._monotonic = clock, monotonic
        self._states: dict[str, PollState] = {}
        self._next_due: dict[str, float] = {}
        self._in_flight: set[str] = set()
        self._outcomes: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._engines: dict[Credentials | None, hl.SnmpEngine] = {}
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._prepared: set[SnmpTarget] = set()  # registered with their engine (see collector.network.snmp.prepare)
        self.last_cycle_seconds: float | None = None
        self.cycles_total = 0
        self.overruns_total = 0
        self.polls_total: dict[str, int] = dict.fromkeys(RESULTS, 0)

    def set_targets(self, targets: Iterable[SnmpTarget]) -> None:
        """Replace the fleet (inventory reloaded); devices that stay keep their counters and cadence."""
        self._targets = {t.asset: t for t in targets}
        self._prepared &= set(self._targets.values())
        for table in (self._states, self._next_due, self._outcomes):
            for gone in set(table) - set(self._targets):
                del table[gone]
        self._changed.set()

    def engine(self, credentials: Credentials | None = None) -> hl.SnmpEngine:
        """The SnmpEngine for ``credentials`` on the running loop.

        pysnmp binds an engine to the loop that first used it, and its USM keys users by name: two
        devices whose v3 user has the same name but different keys would overwrite each other's keys
        mid-flight. So each distinct v3 credential set has its own; v2c devices, which are polled over
        sockets of their own (:mod:`collector.network.snmp_wire`), share one that sends nothing.
        """
        loop = asyncio.get_running_loop()
        if self._engine_loop is not loop:  # engines of a finished loop cannot be used (or closed) here
            self._engines, self._engine_loop, self._prepared = {}, loop, set()
        key = None if credentials is None or credentials.community is not None else credentials
        if key not in self._engines:
            self._engines[key] = hl.SnmpEngine()
        return self._engines[key]

    def close(self) -> None:
        """Close every engine's dispatcher (its UDP socket and timer)."""
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines, self._engine_loop, self._prepared = {}, None, set()

    async def poll_once(self, targets: Iterable[SnmpTarget] | None = None) -> dict[str, PollResult]:
        """Poll ``targets`` (default: the whole fleet) once, concurrently, as one cycle."""
        batch = list(self._targets.values() if targets is None else targets)
        return dict(zip([t.asset for t in batch], await self._cycle(batch), strict=True))

    async def run(self) -> None:
        """Poll every device on its cadence until cancelled; closes the engines at the end."""
        cycles: set[asyncio.Task[list[PollResult]]] = set()
        try:
            while True:
                now = self._monotonic()
                due = [t for a, t in self._targets.items()
                       if a not in self._in_flight and self._next_due.get(a, now) <= now]
                for t in due:  # keep the cadence; a slot missed entirely is skipped, not caught up
                    following = self._next_due.get(t.asset, now) + t.config.interval
                    self._next_due[t.asset] = following if following > now else now + t.config.interval
                if due:
                    task = asyncio.create_task(self._cycle(due), name="snmp-cycle")
                    cycles.add(task)
                    task.add_done_callback(cycles.discard)
                waiting = [d for a, d in self._next_due.items() if a not in self._in_flight]
                with suppress(TimeoutError):  # until the next device is due, a poll ends, or the fleet changes
                    await asyncio.wait_for(self._changed.wait(), max(0.0, min(waiting, default=now + 60) - now))
                self._changed.clear()
        finally:
            for task in cycles:
                task.cancel()
            await asyncio.gather(*cycles, return_exceptions=True)
            self.close()

    async def _cycle(self, batch: list[SnmpTarget]) -> list[PollResult]:
        started = self._monotonic()
        new = [t for t in batch if t not in self._prepared]
        if new:  # every new device registered before the first request goes out
            await asyncio.gather(*(prepare(self.engine(t.credentials), t.address, t.config, t.credentials) for t in new))
            self._prepared.update(new)
        results = await asyncio.gather(*(self._poll_target(t) for t in batch))
        self.last_cycle_seconds = self._monotonic() - started
        self.cycles_total += 1
        return results

    async def _poll_target(self, target: SnmpTarget) -> PollResult:
        cfg, device = target.config, f"{target.address}:{target.config.port}"
        self._in_flight.add(target.asset)
        try:
            async with self._semaphore:
                now, started = self._clock(), self._monotonic()
                previous = self._states.get(target.asset)
                try:
                    async with asyncio.timeout(cfg.interval):
                        result = await poll(self.engine(target.credentials), target.address, cfg,
                                            target.credentials, previous, now)
                except TimeoutError:
                    error: SnmpError = SnmpDeadlineExceeded(
                        device, f"the poll took longer than its interval ({cfg.interval:g}s): raise interval, "
                                f"or lower timeout and retries")
                    result = PollResult.failed(error, previous, self._monotonic() - started)
                except Exception as exc:  # a supervisor: one device's bug must not stop the fleet
                    logger.exception("snmp_poll_crashed", asset=target.asset)
                    error = _InternalError(device, f"internal error: {exc!r}")
                    result = PollResult.failed(error, previous, self._monotonic() - started)
                self.polls_total[result.result] += 1
                if self._monotonic() - started > cfg.interval:
                    self.overruns_total += 1
                self._states[target.asset] = result.state
        finally:
            self._in_flight.discard(target.asset)
            self._changed.set()
        if self._outcomes.get(target.asset, "ok") != result.result:  # log changes, not every failed poll
            if result.error is None:
                logger.info("snmp_poll_recovered", asset=target.asset)
            else:
                logger.warning("snmp_poll_failed", asset=target.asset, result=result.result, error=str(result.error))
        self._outcomes[target.asset] = result.result
        if self._on_result is not None:
            try:
                await self._on_result(target.asset, result, now)
            except Exception:
                logger.exception("snmp_result_callback_failed", asset=target.asset)
        return result
