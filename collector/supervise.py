"""Background work that must not die: a periodic tick whose failures are logged and retried."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

logger = structlog.get_logger("schoolops.supervise")


async def every(seconds: float, tick: Callable[[], Awaitable[object]], *, name: str,
                wake: asyncio.Event | None = None) -> None:
    """Run ``tick`` every ``seconds`` (sooner when ``wake`` is set) until cancelled; a failing tick is
    logged with its traceback and the next one runs as usual — one bad item never stops the loop."""
    while True:
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("tick_failed", task=name)
        if wake is None:
            await asyncio.sleep(seconds)
            continue
        try:
            await asyncio.wait_for(wake.wait(), seconds)
        except TimeoutError:
            pass
        wake.clear()
