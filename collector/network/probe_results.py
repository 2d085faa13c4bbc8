"""What every probe shares: its result, and a failure in plain words.

A failed service never raises: the failure *is* the result, ``up=False`` with ``error`` in plain
words ("connection refused", "name not found"); running out of time is a result like any other
(:func:`_bounded`). Used by the probes of :mod:`collector.network.probes`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
from collections.abc import Awaitable, Callable

from collector.network.config import ProbeConfig
from schoolops.wire import ProbeResult

ProbeFn = Callable[[ProbeConfig], Awaitable[ProbeResult]]

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EACCES: "permission denied",
}


def _result(config: ProbeConfig, *, up: bool, latency_seconds: float | None = None, status: int | None = None,
            days_left: float | None = None, error: str | None = None) -> ProbeResult:
    return ProbeResult(name=config.name, kind=config.kind, target=config.target, up=up,
                       latency_seconds=latency_seconds, status=status, days_left=days_left, error=error)


def _down(config: ProbeConfig, error: str, *, latency_seconds: float | None = None, status: int | None = None,
          days_left: float | None = None) -> ProbeResult:
    return _result(config, up=False, error=error, latency_seconds=latency_seconds, status=status, days_left=days_left)


def _describe(exc: OSError) -> str:
    """An OS-level failure in plain words."""
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return "name not found"
        if exc.errno == socket.EAI_AGAIN:
            return "name lookup failed for now (no DNS server answered)"
        return f"name lookup failed: {exc.strerror}"
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    return exc.strerror or str(exc) or type(exc).__name__


_TLS_REASON_TEXT = {
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port",
    "UNEXPECTED_EOF_WHILE_READING": "the server closed the connection during the handshake",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common with the server",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no TLS version or cipher in common with the server",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server wants a client certificate",
}


def _tls_text(exc: BaseException) -> str:
    """A TLS handshake failure (not a verification failure) in plain words."""
    reason = getattr(exc, "reason", None)
    return "TLS handshake failed: " + _TLS_REASON_TEXT.get(reason or "", reason or str(exc))


def _bounded(probe: ProbeFn) -> ProbeFn:
    """Hold a probe to its config's timeout; running out of time is a result like any other."""

    @functools.wraps(probe)
    async def bounded(config: ProbeConfig) -> ProbeResult:
        try:
            async with asyncio.timeout(config.timeout):
                return await probe(config)
        except TimeoutError:
            return _down(config, f"timed out after {config.timeout:g} s")

    return bounded
