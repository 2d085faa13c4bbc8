"""The host probes against this machine's real kernel, mounts and counters."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.config import ProbesConfig
from agent.probes import ProbeState, build_probes
from agent.probes.system import (
    PSEUDO_FSTYPES,
    CpuProbe,
    DiskProbe,
    FilesystemProbe,
    HostProbe,
    LoadProbe,
    MemoryProbe,
    NetworkProbe,
    TemperatureProbe,
)
from schoolops import wire
from tests.agent.probe_helpers import assert_wire, built, probes_config

MiB = 1024 * 1024
def mount_tmpfs(where: Path, options: str) -> None:
    try:
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command on this machine")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "tmpfs"
    where.mkdir()
    mount_tmpfs(where, "size=4m")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def by_mountpoint(filesystems: list[wire.Filesystem]) -> dict[str, wire.Filesystem]:
    return {fs.mountpoint: fs for fs in filesystems}


def test_every_report_section_has_its_probe_and_the_defaults_build_the_host_probes() -> None:
    probes = build_probes(ProbesConfig(), ProbeState())
    names = {probe.name for probe in probes}
    assert {"host", "cpu", "memory", "load", "filesystems", "disks", "network"} <= names
    assert names <= set(wire.Report.__struct_fields__)


def test_disabled_probes_are_not_built() -> None:
    config = probes_config(
        host=False, cpu=False, memory=False, load=False,
        filesystems=False, disks=False, network=False, temperatures=False,
    )
    state = ProbeState()
    host_probes = (
        HostProbe, CpuProbe, MemoryProbe, LoadProbe, FilesystemProbe, DiskProbe, NetworkProbe, TemperatureProbe
    )
    for probe in host_probes:
        assert probe.build(config, state) is None
    assert build_probes(config, state) == []


def test_host_names_this_machine() -> None:
    host = built(HostProbe.build, ProbesConfig(), ProbeState()).collect()
    assert host.hostname == socket.gethostname()[:64]
    assert host.boot_time == psutil.boot_time()
    assert host.os == platform.freedesktop_os_release()["PRETTY_NAME"] and host.kernel == os.uname().release
    assert_wire("host", host)


def test_cpu_has_one_entry_per_core_with_growing_times() -> None:
    probe = built(CpuProbe.build, ProbesConfig(), ProbeState())
    first = probe.collect()
    sum(i * i for i in range(200_000))  # some work between the two looks
    second = probe.collect()
    assert len(second.cores) == psutil.cpu_count()
    assert 0 <= second.percent <= 100
    assert sum(c.user + c.system for c in second.cores) >= sum(c.user + c.system for c in first.cores)
    assert all(c.idle > 0 for c in second.cores)
    assert_wire("cpu", second)


def test_memory_is_plausible() -> None:
    memory = built(MemoryProbe.build, ProbesConfig(), ProbeState()).collect()
    assert memory.total == psutil.virtual_memory().total
    assert 0 < memory.available <= memory.total
    assert memory.free <= memory.total and memory.used <= memory.total
    assert memory.swap_free <= memory.swap_total
    assert_wire("memory", memory)


def test_load_averages() -> None:
    load = built(LoadProbe.build, ProbesConfig(), ProbeState()).collect()
    assert min(load.load1, load.load5, load.load15) >= 0
    assert_wire("load", load)


def test_filesystems_include_root_and_a_tmpfs_but_no_pseudo_filesystems(tmpfs: Path) -> None:
    probe = built(FilesystemProbe.build, ProbesConfig(), ProbeState())
    found = by_mountpoint(probe.collect())
    root = found["/"]
    assert root.size > 100 * MiB and 0 < root.avail <= root.free <= root.size
    assert root.files == os.statvfs("/").f_files
    fs = found[str(tmpfs)]
    assert (fs.fstype, fs.size, fs.readonly) == ("tmpfs", 4 * MiB, False)
    assert fs.free == fs.size and fs.files > fs.files_free > 0
    assert not {f.fstype for f in found.values()} & PSEUDO_FSTYPES
    assert "/proc" not in found and "/sys" not in found
    assert len(found) == len(probe.collect())  # one entry per mountpoint
    assert_wire("filesystems", list(found.values()))


def test_filling_a_tmpfs_shows_in_free_space_and_inodes(tmpfs: Path) -> None:
    probe = built(FilesystemProbe.build, ProbesConfig(), ProbeState())
    before = by_mountpoint(probe.collect())[str(tmpfs)]
    (tmpfs / "filler").write_bytes(b"\0" * (3 * MiB))
    after = by_mountpoint(probe.collect())[str(tmpfs)]
    assert after.free <= before.free - 3 * MiB
    assert after.avail <= before.avail - 3 * MiB
    assert after.files_free == before.files_free - 1


def test_a_read_only_mount_is_marked_readonly(tmp_path: Path) -> None:
    where = tmp_path / "ro"
    where.mkdir()
    mount_tmpfs(where, "ro,size=1m")
    try:
        found = by_mountpoint(built(FilesystemProbe.build, ProbesConfig(), ProbeState()).collect())
        assert found[str(where)].readonly is True
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_excluded_mountpoints_and_fstypes_are_left_out(tmpfs: Path) -> None:
    by_path = built(FilesystemProbe.build, probes_config(exclude_mountpoints=[f"^{tmpfs}$"]), ProbeState())
    assert str(tmpfs) not in by_mountpoint(by_path.collect())
    by_type = built(FilesystemProbe.build, probes_config(exclude_fstypes=["tmpfs"]), ProbeState())
    found = by_mountpoint(by_type.collect())
    assert "/" in found and all(fs.fstype != "tmpfs" for fs in found.values())


def test_a_mountpoint_that_cannot_be_statted_is_skipped(tmp_path: Path) -> None:
    # Mount a tmpfs inside another directory, then hide that directory under a second mount:
    # the kernel still lists the inner mount, but its path no longer resolves.
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    mount_tmpfs(inner, "size=1m")
    try:
        mount_tmpfs(outer, "size=1m")
        try:
            assert str(inner) in {p.mountpoint for p in psutil.disk_partitions(all=True)}
            with pytest.raises(OSError):
                os.statvfs(inner)
            found = by_mountpoint(built(FilesystemProbe.build, ProbesConfig(), ProbeState()).collect())
            assert str(outer) in found and str(inner) not in found and "/" in found
        finally:
            subprocess.run(["umount", str(outer)], check=True)
    finally:
        subprocess.run(["umount", str(inner)], check=True)


def test_disks_are_whole_devices_without_ram_or_loop() -> None:
    disks = built(DiskProbe.build, ProbesConfig(), ProbeState()).collect()
    names = {d.device for d in disks}
    assert not any(n.startswith(("loop", "ram", "zram")) for n in names)
    counters = psutil.disk_io_counters(perdisk=True)
    for disk in disks:
        assert disk.reads <= counters[disk.device].read_count  # counters only grow
        assert disk.read_seconds <= counters[disk.device].read_time / 1000
    assert_wire("disks", disks)


def test_network_has_loopback_up_with_its_traffic() -> None:
    probe = built(NetworkProbe.build, ProbesConfig(), ProbeState())
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        client.sendall(b"x" * 10_000)
        conn, _ = server.accept()
        with conn:
            received = 0
            while received < 10_000:
                received += len(conn.recv(65536))
    interfaces = {i.device: i for i in probe.collect()}
    lo = interfaces["lo"]
    assert lo.up and lo.rx_bytes >= 10_000 and lo.tx_packets > 0
    assert set(interfaces) == set(psutil.net_io_counters(pernic=True))
    assert_wire("network", list(interfaces.values()))


def test_temperatures_are_reported_when_the_machine_has_sensors() -> None:
    probe = built(TemperatureProbe.build, ProbesConfig(), ProbeState())
    assert probe is not None
    temperatures = probe.collect()
    expected = sum(len(sensors) for sensors in psutil.sensors_temperatures().values())
    assert len(temperatures) <= expected  # may be empty: a VM has no sensors
    assert_wire("temperatures", temperatures)
