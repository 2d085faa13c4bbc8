"""Host metrics from psutil and the kernel: host, cpu, memory, load, filesystems, disks, network, temperatures.

Each probe reads counters as they are (cumulative where the kernel keeps them cumulative); rates
are the collector's business.
"""

from __future__ import annotations

import math
import os
import platform
import re
import socket
import threading
from typing import Self

import psutil

from agent.config import ProbesConfig
from agent.probes import ProbeState
from schoolops import wire

# node_exporter's default --collector.filesystem.fs-types-exclude. tmpfs is deliberately absent:
# a full /run or /dev/shm breaks a server as surely as a full disk.
PSEUDO_FSTYPES = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "fusectl",
    "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore", "rpc_pipefs", "securityfs",
    "selinuxfs", "squashfs", "sysfs", "tracefs",
})
# Where statvfs can block for minutes on a dead server: asked in a helper thread with a time limit.
NETWORK_FSTYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "fuse.sshfs", "9p", "afs"})
STATVFS_TIMEOUT = 5.0
# node_exporter's default --collector.diskstats.device-exclude: RAM and loop devices, and the
# partitions of whole disks that are reported themselves.
EXCLUDED_DISKS = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
MAX_MOUNTPOINT = 1024


def label(text: str) -> str:
    """``text`` fitted to :data:`schoolops.wire.Label`: no control characters, at most 64 characters."""
    return re.sub(r"[\x00-\x1f]", "?", text)[:64]


def _count(value: float | None) -> int:
    return max(0, int(value or 0))


class HostProbe:
    name = "host"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.host else None

    def collect(self) -> wire.Host:
        uname = platform.uname()
        try:  # "Debian GNU/Linux 12 (bookworm)" says more to a person than "Linux"
            os_name = platform.freedesktop_os_release().get("PRETTY_NAME", uname.system)
        except OSError:
            os_name = uname.system
        return wire.Host(
            hostname=label(socket.gethostname()),
            boot_time=max(0.0, psutil.boot_time()),
            os=label(os_name),
            kernel=label(uname.release),
        )


class CpuProbe:
    """Busy percentage since the previous collect, and each core's cumulative times per mode."""

    name = "cpu"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        if not config.cpu:
            return None
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline: take it now
        return cls()

    def collect(self) -> wire.Cpu:
        percent = min(100.0, max(0.0, psutil.cpu_percent(interval=None)))
        cores = [
            wire.CpuTimes(*(max(0.0, float(getattr(times, mode, 0.0))) for mode in wire.CPU_MODES))
            for times in psutil.cpu_times(percpu=True)[:4096]
        ]
        return wire.Cpu(percent=percent, cores=cores)


class MemoryProbe:
    name = "memory"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.memory else None

    def collect(self) -> wire.Memory:
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        return wire.Memory(
            total=_count(vm.total),
            available=_count(vm.available),
            used=_count(vm.used),
            free=_count(vm.free),
            buffers=_count(getattr(vm, "buffers", 0)),
            cached=_count(getattr(vm, "cached", 0)),
            swap_total=_count(swap.total),
            swap_free=_count(swap.free),
        )


class LoadProbe:
    name = "load"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.load and hasattr(os, "getloadavg") else None

    def collect(self) -> wire.Load:
        load1, load5, load15 = os.getloadavg()
        return wire.Load(load1=max(0.0, load1), load5=max(0.0, load5), load15=max(0.0, load15))


class FilesystemProbe:
    """Space and inodes of every real mounted filesystem, tmpfs included."""

    name = "filesystems"

    def __init__(self, exclude_fstypes: frozenset[str], exclude_mountpoints: list[re.Pattern[str]]) -> None:
        self.exclude_fstypes = exclude_fstypes
        self.exclude_mountpoints = exclude_mountpoints
        self._stuck: set[str] = set()  # network mounts whose statvfs has not returned yet
        self._lock = threading.Lock()

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        if not config.filesystems:
            return None
        return cls(PSEUDO_FSTYPES | set(config.exclude_fstypes), [re.compile(p) for p in config.exclude_mountpoints])

    def collect(self) -> list[wire.Filesystem]:
        mounts: dict[str, tuple[str, str, str]] = {}  # mountpoint: (device, fstype, options)
        for part in psutil.disk_partitions(all=True):
            if part.fstype in self.exclude_fstypes or len(part.mountpoint) > MAX_MOUNTPOINT:
                continue
            if any(p.search(part.mountpoint) for p in self.exclude_mountpoints):
                continue
            mounts[part.mountpoint] = (part.device, part.fstype, part.opts)  # a later mount hides an earlier one
        result = []
        for mountpoint, (device, fstype, options) in mounts.items():
            st = self._statvfs(mountpoint, fstype)
            if st is None:
                continue
            result.append(
                wire.Filesystem(
                    device=label(device),
                    mountpoint=mountpoint,
                    fstype=label(fstype),
                    size=st.f_blocks * st.f_frsize,
                    free=st.f_bfree * st.f_frsize,
                    avail=st.f_bavail * st.f_frsize,
                    files=st.f_files,
                    files_free=st.f_ffree,
                    readonly="ro" in options.split(",") or bool(st.f_flag & os.ST_RDONLY),
                )
            )
        return result[:1024]

    def _statvfs(self, mountpoint: str, fstype: str) -> os.statvfs_result | None:
        """statvfs, or None when it fails; a network mount gets a time limit and is skipped while stuck."""
        if fstype not in NETWORK_FSTYPES:
            try:
                return os.statvfs(mountpoint)
            except OSError:
                return None
        with self._lock:
            if mountpoint in self._stuck:
                return None
            self._stuck.add(mountpoint)
        box: list[os.statvfs_result] = []

        def ask() -> None:
            try:
                box.append(os.statvfs(mountpoint))
            except OSError:
                pass
            finally:
                with self._lock:
                    self._stuck.discard(mountpoint)

        thread = threading.Thread(target=ask, name=f"statvfs {mountpoint}", daemon=True)
        thread.start()
        thread.join(STATVFS_TIMEOUT)
        return box[0] if box else None


class DiskProbe:
    name = "disks"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.disks else None

    def collect(self) -> list[wire.Disk]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        return [
            wire.Disk(
                device=label(device),
                reads=_count(io.read_count),
                writes=_count(io.write_count),
                read_bytes=_count(io.read_bytes),
                written_bytes=_count(io.write_bytes),
                read_seconds=max(0, io.read_time) / 1000,
                write_seconds=max(0, io.write_time) / 1000,
                io_seconds=max(0, getattr(io, "busy_time", 0)) / 1000,
            )
            for device, io in counters.items()
            if not EXCLUDED_DISKS.match(device)
        ][:1024]


class NetworkProbe:
    name = "network"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.network else None

    def collect(self) -> list[wire.NetInterface]:
        stats = psutil.net_if_stats()
        result = []
        for device, io in psutil.net_io_counters(pernic=True).items():
            nic = stats.get(device)
            result.append(
                wire.NetInterface(
                    device=label(device),
                    up=bool(nic and nic.isup),
                    speed_mbps=_count(nic.speed if nic else 0),
                    rx_bytes=_count(io.bytes_recv),
                    tx_bytes=_count(io.bytes_sent),
                    rx_packets=_count(io.packets_recv),
                    tx_packets=_count(io.packets_sent),
                    rx_errs=_count(io.errin),
                    tx_errs=_count(io.errout),
                    rx_drop=_count(io.dropin),
                    tx_drop=_count(io.dropout),
                )
            )
        return result[:1024]


class TemperatureProbe:
    name = "temperatures"

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls() if config.temperatures and hasattr(psutil, "sensors_temperatures") else None

    def collect(self) -> list[wire.Temperature]:
        result = []
        for chip, sensors in psutil.sensors_temperatures().items():
            for index, sensor in enumerate(sensors, start=1):
                if sensor.current is None or not math.isfinite(sensor.current):
                    continue
                result.append(
                    wire.Temperature(
                        chip=label(chip),
                        sensor=label(sensor.label or f"temp{index}"),
                        celsius=float(sensor.current),
                        high=_finite(sensor.high),
                        critical=_finite(sensor.critical),
                    )
                )
        return result[:1024]


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
