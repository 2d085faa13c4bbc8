"""What people need beside a measured value to act on it, read from the same report (pure).

A backup that is "0 (standard: equals 1)" says little; "newest /srv/backup/db.sql.gz, 3.0 days old
(at most 26 h)" says what to look at. :func:`describe` gives that line for the measurements where
the report knows more than the number, and "" for the others.
"""

from __future__ import annotations

from schoolops.wire import Report


def _age(seconds: float) -> str:
    """3.0 days, 26 h, 1.5 h, 40 min."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours.is_integer() else f"{hours:.1f} h"
    return f"{seconds / 60:.0f} min"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def describe(report: Report, metric: str, key: str) -> str:
    if metric.startswith("file."):
        for check in report.files or ():
            if check.name == key:
                limit = f"at most {_age(float(check.max_age_seconds))}"
                if check.error:
                    return f"{check.path}: {check.error}"
                if not check.count or check.newest_age_seconds is None:
                    return f"no matching file in {check.path} ({limit})"
                return f"newest {check.newest_file or check.path}, {_age(float(check.newest_age_seconds))} old ({limit})"
    elif metric.startswith("filesystem."):
        for fs in report.filesystems or ():
            if fs.mountpoint == key and fs.size:
                return f"{_bytes(fs.size - fs.free)} used of {_bytes(fs.size)}, {_bytes(fs.avail)} free"
    elif metric.startswith("interface."):
        for interface in report.interfaces or ():
            if interface.name == key:
                state = f"admin {'up' if interface.admin_up else 'down'}, oper {'up' if interface.oper_up else 'down'}"
                return f"{interface.alias} ({state})" if interface.alias else state
    elif metric.startswith(("probe.", "http.", "tls.")):
        for probe in report.probes or ():
            if probe.name == key:
                return f"{probe.kind} {probe.target}" + (f": {probe.error}" if probe.error else "")
    return ""
