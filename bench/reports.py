"""Synthetic agent reports, valid per :mod:`schoolops.wire`: a typical school server's report.

Load generators must send a new sequence number with every report (the collector applies each
``(asset, stream, seq)`` once; a repeat is only acknowledged), so a report is kept as the bytes
before and after its ``seq`` value: ``prefix + str(seq) + suffix`` is a valid body.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from schoolops import wire

_SENTINEL = wire.MAX_SEQ  # a number no other field of the report holds


def server_report(asset: str, stream: str, seq: int = 1, *, interval: float = 15.0, site: str = "main-building",
                  role: str = "web", tier: wire.Tier = wire.Tier.IMPORTANT) -> wire.Report:
    """What the agent's default probes (plus a few watches) report for a 4-core server; all healthy."""
    now = time.time()
    gib = 1 << 30
    return wire.Report(
        schema=wire.SCHEMA_VERSION, asset=asset, stream=stream, seq=seq, collected_at=now, interval=interval,
        agent_version="0.1.0", labels=wire.AssetLabels(site=site, role=role, tier=tier),
        host=wire.Host(hostname=asset, boot_time=now - 86400 * 12, os="Debian GNU/Linux 12", kernel="6.1.0-28-amd64"),
        cpu=wire.Cpu(percent=12.5, cores=[wire.CpuTimes(90000.0 + i, 120.0, 30000.0, 2000000.0, 800.0, 0.0, 400.0, 0.0)
                                           for i in range(4)]),
        memory=wire.Memory(total=16 * gib, available=9 * gib, used=6 * gib, free=2 * gib, buffers=gib // 4,
                           cached=5 * gib, swap_total=2 * gib, swap_free=2 * gib),
        load=wire.Load(load1=0.4, load5=0.35, load15=0.3),
        filesystems=[wire.Filesystem(device=device, mountpoint=mount, fstype="ext4", size=size, free=size // 2,
                                     avail=size // 2 - size // 20, files=size // 16384, files_free=size // 20000)
                     for device, mount, size in (("/dev/sda1", "/", 40 * gib), ("/dev/sda2", "/var", 200 * gib),
                                                 ("/dev/sdb1", "/srv", 1000 * gib), ("/dev/sda3", "/boot", gib))],
        disks=[wire.Disk(device=d, reads=1_000_000, writes=3_000_000, read_bytes=80 * gib, written_bytes=300 * gib,
                         read_seconds=900.0, write_seconds=4000.0, io_seconds=3000.0) for d in ("sda", "sdb")],
        network=[wire.NetInterface(device=d, up=True, speed_mbps=1000, rx_bytes=900 * gib, tx_bytes=1200 * gib,
                                   rx_packets=900_000_000, tx_packets=1_100_000_000, rx_errs=0, tx_errs=0,
                                   rx_drop=12, tx_drop=0) for d in ("eno1", "eno2")],
        processes=[wire.WatchedProcess(name=n, running=True, count=c, cpu_seconds=5000.0, rss_bytes=300 << 20)
                   for n, c in (("nginx", 5), ("postgres", 12), ("sshd", 1))],
        ports=[wire.Port(name=n, port=p, listening=True) for n, p in (("https", 443), ("ssh", 22))],
        files=[wire.FileFreshness(name="nightly-backup", path="/srv/backup", max_age_seconds=93600.0, count=14,
                                  fresh=True, newest_age_seconds=30000.0, newest_file="/srv/backup/db.sql.gz")],
    )


@dataclass(frozen=True)
class ReportTemplate:
    """One asset's report split around its ``seq``; ``body(n)`` is report number ``n`` of the stream."""

    asset: str
    token: str
    prefix: bytes
    suffix: bytes

    def body(self, seq: int) -> bytes:
        return self.prefix + str(seq).encode() + self.suffix


def template(asset: str, token: str, *, stream: str | None = None, **fields: object) -> ReportTemplate:
    report = server_report(asset, stream or secrets.token_hex(16), _SENTINEL, **fields)  # type: ignore[arg-type]
    body = wire.encode_report(report)
    marker = f'"seq":{_SENTINEL}'.encode()
    assert body.count(marker) == 1, "the sequence number must appear exactly once in the body"
    head, tail = body.split(marker)
    return ReportTemplate(asset, token, head + b'"seq":', tail)
