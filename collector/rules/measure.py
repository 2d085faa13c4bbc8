"""Named measurements taken from an agent's report: the vocabulary that rule files use.

:func:`measurements` is pure: it maps one :class:`~schoolops.wire.Report` to
``{name: [(key, value), ...]}``. The key says what within the asset was measured ("" for the
asset as a whole); a name is missing when the report has no section for it, and a key is missing
when that thing was not in the report (an unmounted filesystem, a sensor that went away).

====================================  =============  ===============================================
name                                  key            value
====================================  =============  ===============================================
``filesystem.used_percent``           mountpoint     100 × (size − avail) / size, like ``df`` counts
                                                     for ordinary users (reserved blocks are used);
                                                     filesystems of size 0 are skipped
``filesystem.inodes_used_percent``    mountpoint     100 × (files − files_free) / files; skipped when
                                                     the filesystem reports no inode count
``filesystem.avail_bytes``            mountpoint     bytes an ordinary user can still write
``memory.used_percent``               ""             100 × (total − available) / total
``swap.used_percent``                 ""             100 × (swap used) / swap total; 0 with no swap
``load.per_core``                     ""             the 5-minute load average / number of cores
``cpu.percent``                       ""             busy CPU, percent of all cores
``process.running``                   process name   1 when the watched process runs, else 0
``port.listening``                    port name      1 when the expected TCP port listens, else 0
                                                     (ports sharing a name: 0 if any is closed)
``file.fresh``                        check name     1 when the watched file is newer than its
                                                     max age (e.g. last night's backup), else 0
``file.age_seconds``                  check name     age of the newest matching file, seconds
``log.matched_lines``                 watch name     lines that matched in this report's interval
                                                     (reported lines + lines over the rate limit)
``check.status``                      check name     the Nagios plugin's status: 0 OK, 1 WARNING,
                                                     2 CRITICAL, 3 UNKNOWN
``temperature.celsius``               chip/sensor    the sensor's reading (several sensors with the
                                                     same name: the hottest)
``agent.probe_errors``                ""             how many probes failed in this report
``device.reachable``                  ""             1 when the device answered its last poll, else 0
``device.rebooted``                   ""             1 when its uptime went back since the last poll
``interface.oper_down``               ifName         1 when administratively up but operationally down
``interface.utilisation_percent``     ifName         100 × the busier direction / the interface speed
``interface.errors_per_second``       ifName         input + output errors per second
``probe.up``                          probe name     1 when an active probe succeeded, else 0
``probe.latency_seconds``             probe name     the probe's response time
``http.status``                       probe name     the HTTP status an http probe got
``tls.days_left``                     probe name     days until the certificate a tls probe saw expires
====================================  =============  ===============================================
"""

from __future__ import annotations

from collections.abc import Callable

from schoolops.wire import Report

POLLER = "schoolops-poller"  # the agent_version of reports the collector makes for polled assets

METRICS: dict[str, str] = {
    "filesystem.used_percent": "percent of a filesystem in use, by mountpoint",
    "filesystem.inodes_used_percent": "percent of a filesystem's inodes in use, by mountpoint",
    "filesystem.avail_bytes": "bytes an ordinary user can still write, by mountpoint",
    "memory.used_percent": "percent of memory in use (not available)",
    "swap.used_percent": "percent of swap in use (0 with no swap)",
    "load.per_core": "5-minute load average per CPU core",
    "cpu.percent": "busy CPU, percent of all cores",
    "process.running": "1 when a watched process runs, else 0, by process name",
    "port.listening": "1 when an expected TCP port listens, else 0, by port name",
    "file.fresh": "1 when a watched file is fresh, else 0, by check name",
    "file.age_seconds": "age of the newest watched file in seconds, by check name",
    "log.matched_lines": "log lines matched in the last interval, by watch name",
    "check.status": "Nagios plugin status 0..3, by check name",
    "temperature.celsius": "temperature in degrees Celsius, by chip/sensor",
    "agent.probe_errors": "number of agent probes that failed in the report",
    "device.reachable": "1 when a polled device answered, else 0",
    "device.rebooted": "1 when a polled device's uptime went back since the previous poll",
    "interface.oper_down": "1 when an interface is administratively up but operationally down, by ifName",
    "interface.utilisation_percent": "percent of an interface's speed in use (busier direction), by ifName",
    "interface.errors_per_second": "input + output errors per second, by ifName",
    "probe.up": "1 when an active probe succeeded, else 0, by probe name",
    "probe.latency_seconds": "an active probe's response time in seconds, by probe name",
    "http.status": "the HTTP status an http probe got, by probe name",
    "tls.days_left": "days until a probed certificate expires, by probe name",
}

Measurements = dict[str, list[tuple[str, float]]]


def _first(old: float, new: float) -> float:
    return old


class _Table:
    """Collects values by name and key; a repeated key is combined (first, worst, hottest...)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, float]] = {}

    def put(self, name: str, key: str, value: float, combine: Callable[[float, float], float] = _first) -> None:
        assert name in METRICS, name
        by_key = self.values.setdefault(name, {})
        by_key[key] = combine(by_key[key], float(value)) if key in by_key else float(value)

    def result(self) -> Measurements:
        return {name: list(by_key.items()) for name, by_key in self.values.items()}


def measurements(report: Report) -> Measurements:
    """The named measurements in ``report``; pure, and keys are unique within each name."""
    table = _Table()
    for fs in report.filesystems or ():
        table.put("filesystem.avail_bytes", fs.mountpoint, fs.avail)
        if fs.size > 0:
            table.put("filesystem.used_percent", fs.mountpoint, 100.0 * max(fs.size - fs.avail, 0) / fs.size)
        if fs.files > 0:
            used = max(fs.files - fs.files_free, 0)
            table.put("filesystem.inodes_used_percent", fs.mountpoint, 100.0 * used / fs.files)
    if report.memory is not None:
        memory = report.memory
        if memory.total > 0:
            table.put("memory.used_percent", "", 100.0 * max(memory.total - memory.available, 0) / memory.total)
        swap_used = max(memory.swap_total - memory.swap_free, 0)
        table.put("swap.used_percent", "", 100.0 * swap_used / memory.swap_total if memory.swap_total > 0 else 0.0)
    if report.cpu is not None:
        table.put("cpu.percent", "", report.cpu.percent)
        if report.load is not None and report.cpu.cores:
            table.put("load.per_core", "", report.load.load5 / len(report.cpu.cores))
    for process in report.processes or ():
        table.put("process.running", process.name, 1.0 if process.running else 0.0, min)
    for port in report.ports or ():
        table.put("port.listening", port.name, 1.0 if port.listening else 0.0, min)
    for check in report.files or ():
        table.put("file.fresh", check.name, 1.0 if check.fresh else 0.0, min)
        if check.newest_age_seconds is not None:
            table.put("file.age_seconds", check.name, check.newest_age_seconds, max)
    for watch in report.logs or ():
        table.put("log.matched_lines", watch.name, len(watch.lines) + watch.suppressed, _sum)
    for command in report.commands or ():
        table.put("check.status", command.name, int(command.status), max)
    for sensor in report.temperatures or ():
        table.put("temperature.celsius", f"{sensor.chip}/{sensor.sensor}", sensor.celsius, max)
    if report.agent_version != POLLER:  # polled devices and probed services have no agent probes
        table.put("agent.probe_errors", "", len(report.errors))
    if report.device is not None:
        table.put("device.reachable", "", 1.0 if report.device.reachable else 0.0)
        table.put("device.rebooted", "", 1.0 if report.device.rebooted else 0.0)
    for interface in report.interfaces or ():
        table.put("interface.oper_down", interface.name, 1.0 if interface.admin_up and not interface.oper_up else 0.0, max)
        if interface.utilisation is not None:
            table.put("interface.utilisation_percent", interface.name, 100.0 * interface.utilisation, max)
        if interface.errors_per_second is not None:
            table.put("interface.errors_per_second", interface.name, interface.errors_per_second, _sum)
    for probe in report.probes or ():
        table.put("probe.up", probe.name, 1.0 if probe.up else 0.0, min)
        if probe.latency_seconds is not None:
            table.put("probe.latency_seconds", probe.name, probe.latency_seconds, max)
        if probe.status is not None:
            table.put("http.status", probe.name, float(probe.status), max)
        if probe.days_left is not None:
            table.put("tls.days_left", probe.name, probe.days_left, min)
    return table.result()


def _sum(old: float, new: float) -> float:
    return old + new
