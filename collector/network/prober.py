"""The shell that runs the probes of :mod:`collector.network.probes`: :class:`Prober` runs each
probe on its own interval, at most ``concurrency`` at once, delivering
``on_result(asset, result, now)``; :func:`crash_backoff` spaces out a probe that keeps crashing.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from collector.network.config import ProbeConfig
from collector.network.probe_results import ProbeFn
from collector.network.probes import run_probe
from schoolops.wire import ProbeResult

logger = structlog.get_logger("schoolops.probes")


class ResultSink(Protocol):
    def __call__(self, asset: str, result: ProbeResult, now: float, /) -> Awaitable[None] | None: ...


def crash_backoff(interval: float, crashes: int) -> float:
    """Seconds before retrying a probe that crashed ``crashes`` times in a row: doubling, at most an
    hour (or the interval itself when that is longer)."""
    return min(interval * 2.0**crashes, max(interval, 3600.0))


class Prober:
    """Runs each asset's probes on their own interval, at most ``concurrency`` at once.

    A probe that raises (a bug, not a failed service) is logged as ``probe_crashed``, delivers no
    result and is retried after :func:`crash_backoff`; a raising ``on_result`` is logged as
    ``probe_result_undelivered``. Neither stops the other probes.
    """

    def __init__(self, items: Sequence[tuple[str, ProbeConfig]], on_result: ResultSink, *, concurrency: int = 20,
                 probe: ProbeFn = run_probe, clock: Callable[[], float] = time.time) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: at least 1, got {concurrency}")
        self._items = list(items)
        self._on_result = on_result
        self._limit = asyncio.Semaphore(concurrency)
        self._probe = probe
        self._clock = clock

    async def run(self) -> None:
        """Probe until cancelled; every probe starts at once, then keeps to its interval."""
        async with asyncio.TaskGroup() as group:
            for asset, config in self._items:
                group.create_task(self._keep_probing(asset, config), name=f"probe:{asset}:{config.name}")

    async def probe_once(self, items: Sequence[tuple[str, ProbeConfig]]) -> list[tuple[str, ProbeResult]]:
        """Run ``items`` concurrently (within the limit) and return their results in order; a probe
        that crashed is logged and left out. ``on_result`` is not called."""
        results = await asyncio.gather(*(self._run_one(asset, config) for asset, config in items))
        return [(asset, result) for (asset, _), result in zip(items, results, strict=True) if result is not None]

    async def _run_one(self, asset: str, config: ProbeConfig) -> ProbeResult | None:
        async with self._limit:
            try:
                return await self._probe(config)
            except Exception:
                logger.exception("probe_crashed", asset=asset, probe=config.name, kind=config.kind)
                return None

    async def _keep_probing(self, asset: str, config: ProbeConfig) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        due = loop.time()
        while True:
            result = await self._run_one(asset, config)
            if result is None:
                crashes += 1
                due = loop.time() + crash_backoff(config.interval, crashes)
            else:
                crashes = 0
                await self._deliver(asset, result)
                due = max(due + config.interval, loop.time())  # keep the cadence; skip what was missed
            await asyncio.sleep(due - loop.time())

    async def _deliver(self, asset: str, result: ProbeResult) -> None:
        try:
            outcome = self._on_result(asset, result, self._clock())
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("probe_result_undelivered", asset=asset, probe=result.name)
