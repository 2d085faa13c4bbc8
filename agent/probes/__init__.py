"""Probes: each fills one section of the report. Registered explicitly in :data:`PROBES`.

A probe is any object with a ``name`` (the :class:`schoolops.wire.Report` field it fills) and a
``collect()`` that returns that field's value. A factory builds it from the probes config and
returns ``None`` when the config leaves it off. Probes that must remember something across
restarts (log offsets, counters) keep it in their section of :class:`ProbeState`, which the agent
saves with each report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agent.config import ProbesConfig


class Probe(Protocol):
    name: str

    def collect(self) -> Any: ...


class ProbeState:
    """Per-probe JSON-serialisable memory that survives agent restarts."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}

    def section(self, probe: str) -> dict[str, Any]:
        return self.data.setdefault(probe, {})


ProbeFactory = Callable[[ProbesConfig, ProbeState], "Probe | None"]


def _registry() -> dict[str, ProbeFactory]:
    from agent.probes import commands, files, logs, processes, system

    return {
        "host": system.HostProbe.build,
        "cpu": system.CpuProbe.build,
        "memory": system.MemoryProbe.build,
        "load": system.LoadProbe.build,
        "filesystems": system.FilesystemProbe.build,
        "disks": system.DiskProbe.build,
        "network": system.NetworkProbe.build,
        "temperatures": system.TemperatureProbe.build,
        "processes": processes.ProcessProbe.build,
        "ports": processes.PortProbe.build,
        "files": files.FileFreshnessProbe.build,
        "logs": logs.LogWatchProbe.build,
        "commands": commands.CommandProbe.build,
    }


def build_probes(config: ProbesConfig, state: ProbeState) -> list[Probe]:
    probes = []
    for factory in _registry().values():
        probe = factory(config, state)
        if probe is not None:
            probes.append(probe)
    return probes
