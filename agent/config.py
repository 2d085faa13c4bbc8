"""The agent's YAML config, validated at start-up and on SIGHUP; errors name file, line and key."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from msgspec import Meta, Struct, field

from schoolops import ConfigError
from schoolops.conf import load_file
from schoolops.units import ByteSize, Seconds
from schoolops.wire import AssetName, Label, Name, Tier

Strict = {"forbid_unknown_fields": True, "kw_only": True}


class CollectorConfig(Struct, **Strict):
    url: str
    token: str | None = None  # prefer token_file: keep the secret out of the config
    token_file: str | None = None
    ca_file: str | None = None  # verify the collector's certificate against this CA (https only)
    timeout: Seconds = Seconds(10)
    retry_max: Seconds = Seconds(300)  # longest wait between delivery attempts (exponential backoff)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL of the collector, got {self.url!r}")
        if self.token is None and self.token_file is None:
            raise ValueError("set token_file (or token): the collector accepts only authenticated reports")
        if self.token is not None and self.token_file is not None:
            raise ValueError("set token_file or token, not both")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.retry_max < 1:
            raise ValueError("retry_max must be at least 1s")

    def read_token(self) -> str:
        if self.token is not None:
            return self.token.strip()
        assert self.token_file is not None
        try:
            return Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"collector.token_file: cannot read {self.token_file}: {exc.strerror}") from None


class AssetConfig(Struct, **Strict):
    name: AssetName | None = None  # default: this host's name
    site: Label | None = None
    role: Label | None = None
    tier: Tier | None = None


class SpoolConfig(Struct, **Strict):
    max_bytes: ByteSize = ByteSize(64 * 1024 * 1024)
    max_age: Seconds = Seconds(7 * 86400)


class ProcessWatchConfig(Struct, **Strict):
    name: Name
    process_name: Annotated[str, Meta(min_length=1, max_length=64)] | None = None  # default: name
    cmdline_contains: Annotated[str, Meta(min_length=1, max_length=256)] | None = None


class PortWatchConfig(Struct, **Strict):
    port: Annotated[int, Meta(ge=1, le=65535)]
    name: Name | None = None


class FileWatchConfig(Struct, **Strict):
    name: Name
    path: str  # a directory (its newest file matching `pattern` counts) or one file
    max_age: Seconds
    pattern: str = "*"


class LogWatchConfig(Struct, **Strict):
    name: Name
    path: str
    patterns: Annotated[list[str], Meta(min_length=1, max_length=64)]
    max_lines: Annotated[int, Meta(ge=0, le=1000)] = 20  # matched lines reported per interval

    def __post_init__(self) -> None:
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns: {pattern!r} is not a valid regular expression: {exc}") from None


class CommandConfig(Struct, **Strict):
    """A Nagios-compatible plugin, run without a shell."""

    name: Name
    argv: Annotated[list[Annotated[str, Meta(max_length=4096)]], Meta(min_length=1, max_length=64)]
    timeout: Seconds = Seconds(10)

    def __post_init__(self) -> None:
        if not Path(self.argv[0]).is_absolute():
            raise ValueError(f"argv[0] must be an absolute path (no shell, no PATH lookup), got {self.argv[0]!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


class ProbesConfig(Struct, **Strict):
    host: bool = True
    cpu: bool = True
    memory: bool = True
    load: bool = True
    filesystems: bool = True
    disks: bool = True
    network: bool = True
    temperatures: bool = True
    exclude_fstypes: list[str] = []  # added to the built-in list of pseudo filesystems
    exclude_mountpoints: list[str] = []  # regular expressions
    processes: list[ProcessWatchConfig] = []
    ports: list[PortWatchConfig] = []
    files: list[FileWatchConfig] = []
    logs: list[LogWatchConfig] = []
    commands: list[CommandConfig] = []

    def __post_init__(self) -> None:
        for kind in ("processes", "files", "logs", "commands"):
            names = [item.name for item in getattr(self, kind)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: names must be unique, repeated: {', '.join(dupes)}")
        for pattern in self.exclude_mountpoints:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"exclude_mountpoints: {pattern!r} is not a valid regular expression: {exc}") from None


class LogConfig(Struct, **Strict):
    level: Annotated[str, Meta(pattern=r"^(?i:debug|info|warning|error)$")] = "info"
    format: Annotated[str, Meta(pattern=r"^(auto|json|console)$")] = "auto"


class AgentConfig(Struct, **Strict):
    collector: CollectorConfig
    state_dir: str
    asset: AssetConfig = field(default_factory=AssetConfig)
    interval: Seconds = Seconds(15)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.interval <= 86400:
            raise ValueError("interval must be between 1s and 1d")

    @property
    def asset_name(self) -> str:
        return self.asset.name or default_asset_name()


def default_asset_name() -> str:
    """This host's short name, reduced to the characters an asset name allows."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-._")
    return (name or "host")[:63]


def load(path: str | Path) -> AgentConfig:
    return load_file(path, AgentConfig)
