"""/metrics: every asset's latest report as Prometheus series, plus the collector's own health.

Host series are named after node_exporter's where the meaning is the same and the name passes
``promtool check metrics`` (node_exporter's camelCase memory names do not, so memory is
``node_memory_*_bytes`` in snake case). An asset silent for longer than ``silence_intervals`` of its
interval stops exporting host series — Prometheus then marks them stale instead of drawing a
flat line — while ``schoolops_asset_up`` and the last-report age keep telling the story.

The fleet's series are many (about 130 per server; 640,000 for 5,000 assets), so they are not
prometheus-client metric objects: :meth:`FleetCollector.snapshot` takes the fleet's current state on
the event loop, and :meth:`FleetSnapshot.render` writes the text exposition format from it
directly, anywhere (the page is rendered off the loop) — the same lines prometheus-client's
``generate_latest`` writes (HELP, TYPE, labels sorted by name, its number format), at a fraction of
the cost. The collector's own metrics stay in the registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.utils import floatToGoString

import schoolops
from collector.fleet import Fleet, Labels
from schoolops.wire import CPU_MODES, Report

REJECT_REASONS = (
    "missing_token", "invalid_token", "wrong_asset", "malformed_json", "invalid_report",
    "unsupported_schema", "body_too_large", "unsupported_media_type",
)
BASE_LABELS = ("asset", "site", "role")


def _escape(value: str) -> str:
    """A label value as the text format writes it (backslash, newline and double quote escaped)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


class _Families:
    """The fleet's metric families as text: a family's HELP and TYPE come from its first sample, families
    appear in the order of first use, and each sample's labels are sorted by name."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}  # name → (kind, doc, sample lines)

    def add(self, kind: str, name: str, doc: str, base: dict[str, str], extra: dict[str, str], value: float) -> None:
        """``base``: label values already escaped (the asset's, shared by its samples); ``extra``: not yet."""
        entry = self._families.get(name)
        if entry is None:
            entry = self._families[name] = (kind, doc, [])
        labels = base | {key: _escape(text) for key, text in extra.items()} if extra else base
        text = ",".join([f'{key}="{labels[key]}"' for key in sorted(labels)])
        sample = f"{name}_total" if kind == "counter" else name
        entry[2].append(f"{sample}{{{text}}} {floatToGoString(value)}\n")

    def text(self) -> str:
        parts = []
        for name, (kind, doc, lines) in self._families.items():
            shown = f"{name}_total" if kind == "counter" else name
            help_text = doc.replace("\\", "\\\\").replace("\n", "\\n")
            parts.append(f"# HELP {shown} {help_text}\n# TYPE {shown} {kind}\n")
            parts.append("".join(lines))
        return "".join(parts)


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet as it was at ``now``: each asset's name, labels, latest report and its arrival."""

    now: float
    silence_intervals: int
    assets: tuple[tuple[str, Labels, Report | None, float | None], ...]

    def render(self) -> bytes:
        """The fleet's series in the text exposition format (pure: safe to run in a worker thread)."""
        out = _Families()
        for name, labels, report, received_at in self.assets:
            base = {"asset": _escape(name), "site": _escape(labels.site), "role": _escape(labels.role)}
            out.add("gauge", "schoolops_asset_info", "Asset labels (value is always 1).",
                    base, {"tier": labels.tier}, 1)
            fresh = False
            if report is not None and received_at is not None:
                age = max(0.0, self.now - received_at)
                fresh = age <= report.interval * self.silence_intervals
                out.add("gauge", "schoolops_asset_last_report_age_seconds",
                        "Seconds since the asset's last applied report.", base, {}, age)
                out.add("gauge", "schoolops_asset_last_report_timestamp_seconds",
                        "Unix time of the asset's last applied report.", base, {}, received_at)
            out.add("gauge", "schoolops_asset_up", "1 while the asset reports within its silence window.",
                    base, {}, 1 if fresh else 0)
            if report is not None and fresh:
                _report_series(out, base, report)
        return out.text().encode("utf-8")


class FleetCollector:
    """The fleet view's series for /metrics: a snapshot on the event loop, rendered anywhere."""

    def __init__(self, fleet: Fleet, *, silence_intervals: int, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.silence_intervals = silence_intervals
        self.clock = clock

    def snapshot(self) -> FleetSnapshot:
        """Call on the event loop (which changes the fleet): views change, the reports they hold do not."""
        return FleetSnapshot(
            now=self.clock(), silence_intervals=self.silence_intervals,
            assets=tuple((v.name, v.labels, v.report, v.received_at) for v in self.fleet.assets.values()),
        )


def _report_series(out: _Families, base: dict[str, str], r: Report) -> None:
    # positional-only, so that a label may be called "name" (the port check's)
    g: Callable[..., None] = lambda metric, doc, value, /, **extra: out.add("gauge", metric, doc, base, extra, value)  # noqa: E731
    c: Callable[..., None] = lambda metric, doc, value, /, **extra: out.add("counter", metric, doc, base, extra, value)  # noqa: E731
    sp = r.spool
    g("schoolops_agent_spool_pending_reports", "Reports waiting in the agent's spool.", sp.pending)
    g("schoolops_agent_spool_pending_bytes", "Bytes waiting in the agent's spool.", sp.pending_bytes)
    c("schoolops_agent_spool_dropped", "Reports the agent dropped at a spool bound.", sp.dropped_total)
    c("schoolops_agent_spool_replayed", "Reports delivered after waiting in the spool.", sp.replayed_total)
    g("schoolops_agent_probe_errors", "Probes that failed in the latest report.", len(r.errors))
    if r.host:
        g("node_boot_time_seconds", "Node boot time, in unixtime.", r.host.boot_time)
    if r.cpu:
        g("schoolops_cpu_usage_ratio", "CPU busy ratio over the last agent interval.", r.cpu.percent / 100)
        for index, core in enumerate(r.cpu.cores):
            for mode, seconds in zip(CPU_MODES, _values(core), strict=True):
                c("node_cpu_seconds", "Seconds the CPUs spent in each mode.", seconds, cpu=str(index), mode=mode)
    if r.memory:
        m = r.memory
        for field, value in (("total", m.total), ("available", m.available), ("free", m.free),
                             ("buffers", m.buffers), ("cached", m.cached),
                             ("swap_total", m.swap_total), ("swap_free", m.swap_free)):
            g(f"node_memory_{field}_bytes", f"Memory {field.replace('_', ' ')} in bytes.", value)
    if r.load:
        g("node_load1", "1m load average.", r.load.load1)
        g("node_load5", "5m load average.", r.load.load5)
        g("node_load15", "15m load average.", r.load.load15)
    for fs in r.filesystems or ():
        lb = {"device": fs.device, "mountpoint": fs.mountpoint, "fstype": fs.fstype}
        g("node_filesystem_size_bytes", "Filesystem size in bytes.", fs.size, **lb)
        g("node_filesystem_free_bytes", "Filesystem free space in bytes.", fs.free, **lb)
        g("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", fs.avail, **lb)
        g("node_filesystem_files", "Filesystem total file nodes.", fs.files, **lb)
        g("node_filesystem_files_free", "Filesystem total free file nodes.", fs.files_free, **lb)
        g("node_filesystem_readonly", "Filesystem read-only status.", int(fs.readonly), **lb)
    for d in r.disks or ():
        for name, doc, value in (
            ("node_disk_reads_completed", "The total number of reads completed successfully.", d.reads),
            ("node_disk_writes_completed", "The total number of writes completed successfully.", d.writes),
            ("node_disk_read_bytes", "The total number of bytes read successfully.", d.read_bytes),
            ("node_disk_written_bytes", "The total number of bytes written successfully.", d.written_bytes),
            ("node_disk_read_time_seconds", "The total number of seconds spent by all reads.", d.read_seconds),
            ("node_disk_write_time_seconds", "This is the total number of seconds spent by all writes.", d.write_seconds),
            ("node_disk_io_time_seconds", "Total seconds spent doing I/Os.", d.io_seconds),
        ):
            c(name, doc, value, device=d.device)
    for n in r.network or ():
        g("node_network_up", "Value is 1 if the interface is up.", int(n.up), device=n.device)
        g("node_network_speed_bytes", "Interface speed in bytes per second.", n.speed_mbps * 125_000, device=n.device)
        for direction, prefix in (("receive", "rx"), ("transmit", "tx")):
            for what in ("bytes", "packets", "errs", "drop"):
                c(f"node_network_{direction}_{what}", f"Network device statistic {direction}_{what}.",
                  getattr(n, f"{prefix}_{what}"), device=n.device)
    for t in r.temperatures or ():
        g("node_hwmon_temp_celsius", "Hardware monitor for temperature (input).", t.celsius, chip=t.chip, sensor=t.sensor)
        if t.critical is not None:
            g("node_hwmon_temp_crit_celsius", "Hardware monitor for temperature (crit).", t.critical, chip=t.chip, sensor=t.sensor)
    for p in r.processes or ():
        g("schoolops_process_running", "1 if at least one watched process is running.", int(p.running), process=p.name)
        g("schoolops_processes", "Number of running processes matching the watch.", p.count, process=p.name)
        c("schoolops_process_cpu_seconds", "CPU seconds of the matching processes.", p.cpu_seconds, process=p.name)
        g("schoolops_process_resident_memory_bytes", "Resident memory of the matching processes.", p.rss_bytes, process=p.name)
    for port in r.ports or ():
        g("schoolops_port_listening", "1 if a TCP socket listens on the port.", int(port.listening),
          port=str(port.port), name=port.name or "")
    for f in r.files or ():
        g("schoolops_file_fresh", "1 if the newest file is younger than its limit.", int(f.fresh), check=f.name)
        g("schoolops_files", "Files matching the freshness check.", f.count, check=f.name)
        if f.newest_age_seconds is not None:
            g("schoolops_file_newest_age_seconds", "Age of the newest matching file.", f.newest_age_seconds, check=f.name)
    for lw in r.logs or ():
        c("schoolops_log_matches", "Log lines that matched the watch's patterns.", lw.matches_total, check=lw.name)
    if r.device:
        g("schoolops_device_up", "1 when the device answered its last SNMP poll.", int(r.device.reachable))
        g("schoolops_device_poll_duration_seconds", "How long the last poll of the device took.", r.device.poll_seconds)
        if r.device.uptime_seconds is not None:
            g("sys_up_time_seconds", "SNMPv2-MIB sysUpTime, in seconds.", r.device.uptime_seconds)
    for i in r.interfaces or ():
        lb = {"if_index": str(i.index), "if_name": i.name, "if_alias": i.alias}
        g("if_oper_status", "IF-MIB ifOperStatus: 1 up, 2 down.", 1 if i.oper_up else 2, **lb)
        g("if_admin_status", "IF-MIB ifAdminStatus: 1 up, 2 down.", 1 if i.admin_up else 2, **lb)
        g("if_high_speed", "IF-MIB ifHighSpeed: the interface's speed in Mbit/s.", i.speed_bps / 1e6, **lb)
        for name, doc, value in (
            ("if_hc_in_octets", "IF-MIB ifHCInOctets.", i.in_octets), ("if_hc_out_octets", "IF-MIB ifHCOutOctets.", i.out_octets),
            ("if_in_errors", "IF-MIB ifInErrors.", i.in_errors), ("if_out_errors", "IF-MIB ifOutErrors.", i.out_errors),
            ("if_in_discards", "IF-MIB ifInDiscards.", i.in_discards),
            ("if_out_discards", "IF-MIB ifOutDiscards.", i.out_discards),
        ):
            c(name, doc, value, **lb)
        if i.utilisation is not None:
            g("schoolops_interface_utilisation_ratio", "The busier direction's rate / the interface speed.",
              i.utilisation, **lb)
    for p in r.probes or ():
        lb = {"probe": p.name, "kind": p.kind}
        g("schoolops_probe_up", "1 when the active probe succeeded.", int(p.up), **lb)
        if p.latency_seconds is not None:
            g("schoolops_probe_duration_seconds", "The active probe's response time.", p.latency_seconds, **lb)
        if p.status is not None:
            g("schoolops_probe_http_status", "The HTTP status an http probe got.", p.status, **lb)
        if p.days_left is not None:
            g("schoolops_probe_tls_expiry_seconds", "Seconds until the probed certificate expires.", p.days_left * 86400, **lb)
    for cmd in r.commands or ():
        g("schoolops_check_status", "Plugin status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", int(cmd.status), check=cmd.name)
        g("schoolops_check_duration_seconds", "Seconds the plugin ran.", cmd.duration_seconds, check=cmd.name)
        for pd in cmd.perfdata:
            g("schoolops_check_perfdata", "A plugin's performance data value.", pd.value,
              check=cmd.name, label=pd.label, uom=pd.uom)


def _values(struct: Any) -> list[float]:
    return [getattr(struct, f) for f in struct.__struct_fields__]


class CollectorMetrics:
    """The collector's own health, registered on the app's registry; and the fleet's series (``fleet``),
    which /metrics renders beside the registry's."""

    def __init__(self, registry: CollectorRegistry, fleet: FleetCollector) -> None:
        self.fleet = fleet
        self.accepted = Counter(
            "schoolops_reports_accepted", "Reports accepted, by result (applied or duplicate).",
            ["result"], registry=registry,
        )
        self.rejected = Counter(
            "schoolops_reports_rejected", "Reports rejected, by reason.", ["reason"], registry=registry
        )
        self.missing = Counter(
            "schoolops_reports_missing", "Sequence numbers never received (dropped by agents).", registry=registry
        )
        self.ingest_seconds = Histogram(
            "schoolops_ingest_duration_seconds", "Time to authenticate, validate and store a report.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.rules_reload_ok = Gauge(
            "schoolops_rules_last_reload_successful", "1 if the last load of the rule files succeeded.", registry=registry
        )
        info = Gauge("schoolops_build_info", "Collector version (value is always 1).", ["version"], registry=registry)
        info.labels(version=schoolops.__version__).set(1)
        for result in ("applied", "duplicate"):
            self.accepted.labels(result=result)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason=reason)


def build_registry(fleet: Fleet, *, silence_intervals: int) -> tuple[CollectorRegistry, CollectorMetrics]:
    disable_created_metrics()  # *_created series double the page and no dashboard reads them
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry, CollectorMetrics(registry, FleetCollector(fleet, silence_intervals=silence_intervals))
