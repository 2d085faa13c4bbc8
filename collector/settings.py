"""The collector's YAML config, validated at start-up; errors name file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta, Struct, field

from schoolops.conf import load_file
from schoolops.units import ByteSize, Seconds

Strict = {"forbid_unknown_fields": True, "kw_only": True}
DEFAULT_PORT = 8750
SHIPPED_RULES = Path(__file__).resolve().parent.parent / "alerts"
SHIPPED_RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"


class ListenConfig(Struct, **Strict):
    host: str = "127.0.0.1"  # 0.0.0.0 / :: to accept agents from other servers
    port: Annotated[int, Meta(ge=0, le=65535)] = DEFAULT_PORT


class TlsConfig(Struct, **Strict):
    cert_file: str
    key_file: str


class IngestConfig(Struct, **Strict):
    max_body_bytes: ByteSize = ByteSize(1024 * 1024)
    # an asset is "up" while its last report is younger than this many of its intervals
    silence_intervals: Annotated[int, Meta(ge=1, le=1000)] = 3
    # a revoked agent token keeps working at most this long (it saves a lookup per report)
    token_cache: Seconds = Seconds(30)

    def __post_init__(self) -> None:
        if not 1024 <= self.max_body_bytes <= 64 * 1024 * 1024:
            raise ValueError("max_body_bytes must be between 1KiB and 64MiB")


class IncidentConfig(Struct, **Strict):
    quiet_period: Seconds = Seconds(300)  # all faults clear this long → the incident resolves itself
    reopen_window: Seconds = Seconds(1800)  # a fault back within this after resolution reopens the incident
    regroup_window: Seconds = Seconds(120)  # children's young incidents move under a parent that went down
    tick_interval: Seconds = Seconds(5)  # how often silences, quiet periods and maintenance ends are checked
    # roles whose assets serve teaching: exam days and class hours raise their faults' urgency
    teaching_roles: list[str] = field(
        default_factory=lambda: ["teaching", "classroom", "lms", "web", "exam", "network-access", "wifi"]
    )

    def __post_init__(self) -> None:
        if not 0.2 <= self.tick_interval <= 300:
            raise ValueError("tick_interval must be between 0.2s and 5m")


class NetworkConfig(Struct, **Strict):
    trap_host: str | None = None  # listen for SNMP traps here (e.g. 0.0.0.0); unset: no trap receiver
    trap_port: Annotated[int, Meta(ge=1, le=65535)] = 162
    snmp_concurrency: Annotated[int, Meta(ge=1, le=1024)] = 64
    probe_concurrency: Annotated[int, Meta(ge=1, le=1024)] = 20
    cli_concurrency: Annotated[int, Meta(ge=1, le=64)] = 4  # SSH sessions to devices at once
    event_ttl: Seconds = Seconds(3600)  # a trap's fault without a clearing trap clears itself after this


class RunbookConfig(Struct, **Strict):
    dir: str | None = None  # default: the runbooks/ folder shipped with schoolops
    attempts: Annotated[int, Meta(ge=1, le=100)] = 3  # automatic runs per (asset, runbook) in attempt_window
    attempt_window: Seconds = Seconds(3600)
    retry_after: Seconds = Seconds(60)  # wait this long after an automatic run that did not fix the fault
    tick_interval: Seconds = Seconds(1)


class PatrolConfig(Struct, **Strict):
    tick_interval: Seconds = Seconds(5)  # how often the schedule and the queue of patrol runs are looked at
    recheck_interval: Seconds = Seconds(60)  # how often abnormal results of the latest run are checked again


class AuthConfig(Struct, **Strict):
    # roles that log in to the web pages with a TOTP code as well as a password (等保 2.0 level 3 asks it of
    # administrators); a person with such a role and no second factor enrolled cannot log in
    second_factor_roles: list[Annotated[str, Meta(pattern=r"^(admin|director|on-call|operator|viewer)$")]] = \
        field(default_factory=lambda: ["admin"])


class LogConfig(Struct, **Strict):
    level: Annotated[str, Meta(pattern=r"^(?i:debug|info|warning|error)$")] = "info"
    format: Annotated[str, Meta(pattern=r"^(auto|json|console)$")] = "auto"


class CollectorSettings(Struct, **Strict):
    data_dir: str
    listen: ListenConfig = field(default_factory=ListenConfig)
    database_url: str | None = None  # default: SQLite in data_dir
    tls: TlsConfig | None = None
    ingest: IngestConfig = field(default_factory=IngestConfig)
    inventory_file: str | None = None
    rules_dir: str | None = None  # default: the alerts/ folder shipped with schoolops
    calendar_file: str | None = None  # default: public holidays of CN, class hours Mon-Fri 08:00-17:00
    incidents: IncidentConfig = field(default_factory=IncidentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    runbooks: RunbookConfig = field(default_factory=RunbookConfig)
    patrol: PatrolConfig = field(default_factory=PatrolConfig)  # checklists: the runbooks folder's patrol/
    auth: AuthConfig = field(default_factory=AuthConfig)  # web logins
    oncall_file: str | None = None  # people, channels, rotation, escalation: without it nothing is sent
    public_url: str | None = None  # how people reach this collector (for acknowledgement links)
    link_ttl: Seconds = Seconds(86400)  # an acknowledgement link works once, until then
    shutdown_timeout: Seconds = Seconds(10)  # in-flight requests get this long to finish on SIGTERM
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'schoolops.db'}"

    @property
    def rules_path(self) -> Path:
        return Path(self.rules_dir) if self.rules_dir else SHIPPED_RULES

    @property
    def runbooks_path(self) -> Path:
        return Path(self.runbooks.dir) if self.runbooks.dir else SHIPPED_RUNBOOKS

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen.host if self.listen.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.listen.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def load(path: str | Path) -> CollectorSettings:
    return load_file(path, CollectorSettings)
