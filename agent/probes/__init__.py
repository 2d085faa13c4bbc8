"""Probes: each fills one section of the report. Registered explicitly in :data:`PROBES`.

A probe is any object with a ``name`` (the :class:`schoolops.wire.Report` field it fills) and a
``collect()`` that returns that field's value. A factory builds it from the probes config and
returns ``None`` when the config leaves it off. Probes that must remember something across
restarts (log offsets, counters) keep it in their section of :class:`ProbeState`, which the agent
saves with each report.
"""

from __future__ import annotations

import importlib
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

# name (the Report field it fills, and the ProbesConfig key that turns it on) → (module, class with a
# ``build`` factory). A probe's module is imported only when the config turns the probe on: an agent
# that watches no logs and runs no plugins never loads that code.
PROBES: dict[str, tuple[str, str]] = {
    "host": ("agent.probes.system", "HostProbe"),
    "cpu": ("agent.probes.system", "CpuProbe"),
    "memory": ("agent.probes.system", "MemoryProbe"),
    "load": ("agent.probes.system", "LoadProbe"),
    "filesystems": ("agent.probes.system", "FilesystemProbe"),
    "disks": ("agent.probes.system", "DiskProbe"),
    "network": ("agent.probes.system", "NetworkProbe"),
    "temperatures": ("agent.probes.system", "TemperatureProbe"),
    "processes": ("agent.probes.processes", "ProcessProbe"),
    "ports": ("agent.probes.processes", "PortProbe"),
    "files": ("agent.probes.files", "FileFreshnessProbe"),
    "logs": ("agent.probes.logs", "LogWatchProbe"),
    "commands": ("agent.probes.commands", "CommandProbe"),
}


def factory(name: str) -> ProbeFactory:
    module, cls = PROBES[name]
    build: ProbeFactory = getattr(importlib.import_module(module), cls).build
    return build


def build_probes(config: ProbesConfig, state: ProbeState) -> list[Probe]:
    probes = []
    for name in PROBES:
        if not getattr(config, name):  # off (a false flag or an empty watch list): its module stays unloaded
            continue
        probe = factory(name)(config, state)
        if probe is not None:
            probes.append(probe)
    return probes
