"""The agent → collector report, version 1: the one contract both sides import.

A report is one JSON document per agent interval. ``(asset, stream, seq)`` identifies it: the
``stream`` is a random id the agent makes when its state directory is new, and ``seq`` rises by
one per report within a stream, so the collector applies each report exactly once even when the
agent replays its spool or the collector restarts mid-request.

Every probe section is optional: an agent reports what its config enables. Unknown fields are
ignored (a newer agent of the same schema version may add optional sections); a different
``schema`` number is refused with a reason.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from msgspec import Meta

SCHEMA_VERSION = 1
MAX_SEQ = 2**53 - 1  # the largest integer every JSON reader keeps exactly

AssetName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z",
        description="1-63 characters: letters, digits, '.', '_' and '-', starting with a letter or digit",
    ),
]
StreamId = Annotated[str, Meta(pattern=r"^[0-9a-f]{16,64}\Z")]
Seq = Annotated[int, Meta(ge=1, le=MAX_SEQ)]
Count = Annotated[int, Meta(ge=0)]
Amount = Annotated[float, Meta(ge=0)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Label = Annotated[str, Meta(max_length=64, pattern=r"^[^\x00-\x1f]*\Z")]
Text = Annotated[str, Meta(max_length=4096)]


class _Tree(msgspec.Struct, gc=False):
    """Every wire type: a decoded report is a tree of these (no reference cycles), so the garbage
    collector need not track them. The collector holds every asset's latest report, and tracked they
    made each full collection walk thousands of reports' parts."""


class Tier(enum.StrEnum):
    """How much the school depends on an asset; feeds severity classification."""

    CORE = "core"
    IMPORTANT = "important"
    NORMAL = "normal"


class AssetLabels(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):  # a _Tree, but frozen
    site: Label | None = None
    role: Label | None = None
    tier: Tier | None = None


class Host(_Tree, omit_defaults=True):
    hostname: Label
    boot_time: Amount
    os: Label = ""
    kernel: Label = ""


class CpuTimes(_Tree, array_like=True):
    """Seconds spent per mode by one core since boot; array-like to keep reports small."""

    user: Amount
    nice: Amount
    system: Amount
    idle: Amount
    iowait: Amount
    irq: Amount
    softirq: Amount
    steal: Amount


CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class Cpu(_Tree):
    percent: Annotated[float, Meta(ge=0, le=100)]
    cores: Annotated[list[CpuTimes], Meta(max_length=4096)]


class Memory(_Tree):
    total: Count
    available: Count
    used: Count
    free: Count
    buffers: Count = 0
    cached: Count = 0
    swap_total: Count = 0
    swap_free: Count = 0


class Load(_Tree):
    load1: Amount
    load5: Amount
    load15: Amount


class Filesystem(_Tree):
    device: Label
    mountpoint: Annotated[str, Meta(max_length=1024)]
    fstype: Label
    size: Count
    free: Count
    avail: Count
    files: Count
    files_free: Count
    readonly: bool = False


class Disk(_Tree):
    device: Label
    reads: Count
    writes: Count
    read_bytes: Count
    written_bytes: Count
    read_seconds: Amount
    write_seconds: Amount
    io_seconds: Amount = 0.0


class NetInterface(_Tree):
    device: Label
    up: bool
    speed_mbps: Count
    rx_bytes: Count
    tx_bytes: Count
    rx_packets: Count
    tx_packets: Count
    rx_errs: Count
    tx_errs: Count
    rx_drop: Count
    tx_drop: Count


class Temperature(_Tree, omit_defaults=True):
    chip: Label
    sensor: Label
    celsius: float
    high: float | None = None
    critical: float | None = None


class WatchedProcess(_Tree):
    name: Name
    running: bool
    count: Count
    cpu_seconds: Amount
    rss_bytes: Count


class Port(_Tree):
    name: Name
    port: Annotated[int, Meta(ge=1, le=65535)]
    listening: bool


class FileFreshness(_Tree, omit_defaults=True):
    name: Name
    path: Annotated[str, Meta(max_length=1024)]
    max_age_seconds: Amount
    count: Count
    fresh: bool
    newest_age_seconds: Amount | None = None
    newest_file: Annotated[str, Meta(max_length=1024)] | None = None
    error: Text | None = None


class LogLine(_Tree):
    pattern: Annotated[str, Meta(max_length=512)]
    line: Text


class LogWatch(_Tree, omit_defaults=True):
    name: Name
    path: Annotated[str, Meta(max_length=1024)]
    matches_total: Count  # since the stream began; a counter
    lines: Annotated[list[LogLine], Meta(max_length=1000)] = []
    suppressed: Count = 0  # matched this interval but over the rate limit
    error: Text | None = None


class CheckStatus(enum.IntEnum):
    """Nagios plugin exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class PerfData(_Tree, omit_defaults=True):
    label: Annotated[str, Meta(max_length=128)]
    value: float
    uom: Annotated[str, Meta(max_length=16)] = ""
    warn: Annotated[str, Meta(max_length=64)] | None = None
    crit: Annotated[str, Meta(max_length=64)] | None = None
    min: float | None = None
    max: float | None = None


class CommandCheck(_Tree, omit_defaults=True):
    name: Name
    status: CheckStatus
    output: Text
    duration_seconds: Amount
    perfdata: Annotated[list[PerfData], Meta(max_length=256)] = []
    timed_out: bool = False


class ProbeError(_Tree):
    probe: Name
    message: Text


class Device(_Tree, omit_defaults=True):
    """A network device as its poller sees it (SNMP system group)."""

    reachable: bool
    poll_seconds: Amount = 0.0
    sys_name: Text = ""
    sys_descr: Text = ""
    sys_object_id: Annotated[str, Meta(max_length=256)] = ""
    uptime_seconds: Amount | None = None
    rebooted: bool = False  # sysUpTime went back since the previous poll
    error: Text | None = None  # why it could not be polled (timeout, wrong community, auth failure…)


class Interface(_Tree, omit_defaults=True):
    """IF-MIB ifTable + ifXTable; counters are raw (64-bit where the device has them), rates are per second."""

    index: Annotated[int, Meta(ge=0)]
    name: Label
    alias: Label = ""
    admin_up: bool = True
    oper_up: bool = True
    speed_bps: Count = 0
    in_octets: Count = 0
    out_octets: Count = 0
    in_errors: Count = 0
    out_errors: Count = 0
    in_discards: Count = 0
    out_discards: Count = 0
    in_bps: Amount | None = None  # since the previous poll, wraps and resets handled
    out_bps: Amount | None = None
    utilisation: Annotated[float, Meta(ge=0)] | None = None  # max(in, out) / speed, 0..1 (more if speed is wrong)
    errors_per_second: Amount | None = None
    discards_per_second: Amount | None = None


class ProbeResult(_Tree, omit_defaults=True):
    """An active check of a service: ICMP, TCP, HTTP(S), TLS certificate, DNS."""

    name: Name
    kind: Annotated[str, Meta(pattern=r"^(icmp|tcp|http|tls|dns)\Z")]
    target: Annotated[str, Meta(max_length=1024)]
    up: bool
    latency_seconds: Amount | None = None
    status: Annotated[int, Meta(ge=0, le=999)] | None = None  # HTTP status
    days_left: float | None = None  # TLS certificate
    error: Text | None = None


class SpoolStats(_Tree):
    """The agent's outbox as it was when this report was made."""

    pending: Count = 0
    pending_bytes: Count = 0
    dropped_total: Count = 0  # reports discarded because a spool bound was hit
    replayed_total: Count = 0  # reports delivered after waiting in the spool



class Report(_Tree, kw_only=True, omit_defaults=True):
    schema: Annotated[int, Meta(ge=1)]
    asset: AssetName
    stream: StreamId
    seq: Seq
    collected_at: Amount  # unix seconds
    interval: Annotated[float, Meta(gt=0, le=86400)]
    agent_version: Label
    labels: AssetLabels = AssetLabels()
    host: Host | None = None
    cpu: Cpu | None = None
    memory: Memory | None = None
    load: Load | None = None
    filesystems: Annotated[list[Filesystem], Meta(max_length=1024)] | None = None
    disks: Annotated[list[Disk], Meta(max_length=1024)] | None = None
    network: Annotated[list[NetInterface], Meta(max_length=1024)] | None = None
    temperatures: Annotated[list[Temperature], Meta(max_length=1024)] | None = None
    processes: Annotated[list[WatchedProcess], Meta(max_length=1024)] | None = None
    ports: Annotated[list[Port], Meta(max_length=1024)] | None = None
    files: Annotated[list[FileFreshness], Meta(max_length=1024)] | None = None
    logs: Annotated[list[LogWatch], Meta(max_length=1024)] | None = None
    commands: Annotated[list[CommandCheck], Meta(max_length=1024)] | None = None
    device: Device | None = None
    interfaces: Annotated[list[Interface], Meta(max_length=4096)] | None = None
    probes: Annotated[list[ProbeResult], Meta(max_length=1024)] | None = None
    errors: Annotated[list[ProbeError], Meta(max_length=1024)] = []
    spool: SpoolStats = msgspec.field(default_factory=SpoolStats)


class _Envelope(_Tree):
    schema: int


class ReportError(ValueError):
    """A report body that cannot be accepted; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_report_decoder = msgspec.json.Decoder(Report)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()


def encode_report(report: Report) -> bytes:
    return _encoder.encode(report)


def decode_report(body: bytes) -> Report:
    """Decode and validate a report; raise :class:`ReportError` with a reason a person can act on."""
    try:
        report = _report_decoder.decode(body)
    except msgspec.DecodeError as exc:
        try:
            envelope = _envelope_decoder.decode(body)
        except msgspec.ValidationError:
            raise ReportError("invalid_report", f"report does not match the schema: {exc}") from None
        except msgspec.DecodeError:
            raise ReportError("malformed_json", f"body is not valid JSON: {exc}") from None
        if envelope.schema != SCHEMA_VERSION:
            raise ReportError(
                "unsupported_schema",
                f"report schema version {envelope.schema} is not supported (this collector accepts {SCHEMA_VERSION})",
            ) from None
        raise ReportError("invalid_report", f"report does not match the schema: {exc}") from None
    if report.schema != SCHEMA_VERSION:
        raise ReportError(
            "unsupported_schema",
            f"report schema version {report.schema} is not supported (this collector accepts {SCHEMA_VERSION})",
        )
    return report
