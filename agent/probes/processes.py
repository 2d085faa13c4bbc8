"""Watched processes (is the print server running?) and TCP ports that should be listening."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Self

import msgspec
import psutil

from agent.config import PortWatchConfig, ProbesConfig, ProcessWatchConfig
from agent.probes import ProbeState
from schoolops import wire

PROCESS_ATTRS = ["name", "cmdline", "status", "cpu_times", "memory_info"]
PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_LISTEN = "0A"  # the kernel's TCP_LISTEN state, as /proc/net/tcp writes it


class ProcessProbe:
    """How many processes match each watch, with their summed CPU seconds and resident memory."""

    name = "processes"

    def __init__(self, watches: list[ProcessWatchConfig]) -> None:
        self.watches = watches

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls(list(config.processes)) if config.processes else None

    def collect(self) -> list[wire.WatchedProcess]:
        found = {watch.name: _Tally() for watch in self.watches}
        # One pass over the process table for every watch; psutil skips processes that vanish
        # meanwhile and fills attributes it may not read (AccessDenied) with None.
        for proc in psutil.process_iter(PROCESS_ATTRS, ad_value=None):
            info = proc.info
            if info["name"] is None or info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(info["cmdline"] or ())
            for watch in self.watches:
                if info["name"] != (watch.process_name or watch.name):
                    continue
                if watch.cmdline_contains is not None and watch.cmdline_contains not in cmdline:
                    continue
                tally = found[watch.name]
                tally.count += 1
                if info["cpu_times"] is not None:
                    tally.cpu_seconds += max(0.0, info["cpu_times"].user + info["cpu_times"].system)
                if info["memory_info"] is not None:
                    tally.rss_bytes += max(0, info["memory_info"].rss)
        return [
            wire.WatchedProcess(
                name=name,
                running=t.count > 0,
                count=t.count,
                cpu_seconds=t.cpu_seconds,
                rss_bytes=t.rss_bytes,
            )
            for name, t in found.items()
        ]


class _Tally(msgspec.Struct):
    count: int = 0
    cpu_seconds: float = 0.0
    rss_bytes: int = 0


class PortProbe:
    """Whether something listens on each expected TCP port, on any local address (IPv4 or IPv6)."""

    name = "ports"

    def __init__(self, watches: list[PortWatchConfig]) -> None:
        self.watches = watches

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls(list(config.ports)) if config.ports else None

    def collect(self) -> list[wire.Port]:
        listening = listening_ports()
        return [
            wire.Port(name=watch.name or f"tcp/{watch.port}", port=watch.port, listening=watch.port in listening)
            for watch in self.watches
        ]


def listening_ports() -> set[int]:
    """The TCP ports in LISTEN state in this network namespace."""
    if os.path.exists(PROC_NET_TCP[0]):
        # Cheaper than psutil.net_connections, which also maps every socket to its process by
        # walking /proc/*/fd: we only need the ports.
        return listening_ports_from_proc(PROC_NET_TCP)
    return {
        conn.laddr.port
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr
    }


def listening_ports_from_proc(paths: Iterable[str]) -> set[int]:
    """Parse Linux ``/proc/net/tcp``-format tables: ``sl local_address rem_address st ...``."""
    ports: set[int] = set()
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as table:
                next(table, None)  # the header
                for row in table:
                    fields = row.split()
                    if len(fields) > 3 and fields[3] == TCP_LISTEN:
                        _, _, port = fields[1].rpartition(":")
                        try:
                            ports.add(int(port, 16))
                        except ValueError:
                            continue
        except OSError:  # no IPv6 in this kernel, for one
            continue
    return ports
