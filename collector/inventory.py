"""The collector's inventory file: assets with authoritative site/role/tier labels and parents.

Network devices, services and their credentials join this file in later capabilities; for now it
names servers (and any asset) so their labels do not depend on each agent's config.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml
from msgspec import Meta, Struct

from collector.network.config import CliConfig, Host, ProbeConfig, SnmpConfig, SshConfig
from collector.store import InventoryAsset
from schoolops import ConfigError
from schoolops.conf import convert, load_file, load_text
from schoolops.units import enc_hook
from schoolops.wire import AssetName, Label, Tier

Strict = {"forbid_unknown_fields": True, "kw_only": True}


class InventoryEntry(Struct, **Strict):
    name: AssetName
    kind: Annotated[str, Meta(pattern=r"^(server|network|service|sensor)\Z")] = "server"
    site: Label | None = None
    role: Label | None = None
    tier: Tier = Tier.NORMAL
    parents: list[AssetName] = []
    address: Host | None = None  # how the collector reaches a network device
    snmp: SnmpConfig | None = None
    cli: CliConfig | None = None
    ssh: SshConfig | None = None  # how runbooks reach a server
    probes: list[ProbeConfig] = []
    labels: dict[Label, Annotated[str, Meta(max_length=256)]] = {}  # free-form, for runbooks (backup_uplink_ifindex)

    def __post_init__(self) -> None:
        if (self.snmp or self.cli or self.ssh) and self.address is None:
            raise ValueError("address: a device polled by SNMP, reached by CLI or by SSH needs an address")
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError("probes: probe names must be unique within an asset")


class InventoryFile(Struct, **Strict):
    assets: list[InventoryEntry] = []


def load_entries(path: str | Path) -> list[InventoryEntry]:
    """Every entry of the inventory file, each valid and the whole consistent (names, parents)."""
    entries = load_file(path, InventoryFile).assets
    check_entries(path, entries)
    return entries


def check_entries(path: str | Path, entries: list[InventoryEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ConfigError(f"{path}: assets: {entry.name!r} is listed twice")
        seen.add(entry.name)
    for entry in entries:
        for parent in entry.parents:
            if parent not in seen:
                raise ConfigError(f"{path}: assets.{entry.name}.parents: unknown asset {parent!r}")
            if parent == entry.name:
                raise ConfigError(f"{path}: assets.{entry.name}.parents: an asset cannot be its own parent")
    _refuse_cycles(path, {entry.name: entry.parents for entry in entries})


def load_inventory(path: str | Path) -> list[InventoryAsset]:
    return to_assets(load_entries(path))


def to_assets(entries: list[InventoryEntry]) -> list[InventoryAsset]:
    return [
        InventoryAsset(name=e.name, kind=e.kind, site=e.site, role=e.role, tier=str(e.tier), parents=tuple(e.parents))
        for e in entries
    ]


def write_entries(path: str | Path, entries: list[InventoryEntry]) -> None:
    """Validate the whole inventory, then replace the file atomically (the previous one kept as .bak)."""
    path = Path(path)
    check_entries(path, entries)
    text = yaml.safe_dump({"assets": [msgspec.to_builtins(e, enc_hook=enc_hook) for e in entries]},
                          allow_unicode=True, sort_keys=False)
    load_text(text, InventoryFile, source=str(path))  # what is written must read back
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    if path.exists():
        shutil.copy2(path, path.with_name(f"{path.name}.bak"))
    os.replace(tmp, path)


CSV_COLUMNS = {
    "name": "name", "kind": "kind", "site": "site", "role": "role", "tier": "tier", "address": "address",
    "parents": "parents",  # separated by ';'
    "snmp_version": "snmp.version", "snmp_community_secret": "snmp.community_secret", "snmp_user": "snmp.user",
    "snmp_auth": "snmp.auth", "snmp_auth_secret": "snmp.auth_secret", "snmp_priv": "snmp.priv",
    "snmp_priv_secret": "snmp.priv_secret", "snmp_aes_variant": "snmp.aes_variant",
    "cli_device_type": "cli.device_type", "cli_username": "cli.username", "cli_password_secret": "cli.password_secret",
    "cli_enable_secret": "cli.enable_secret", "cli_known_hosts": "cli.known_hosts",
    "ssh_username": "ssh.username", "ssh_key_secret": "ssh.key_secret", "ssh_known_hosts": "ssh.known_hosts",
    "ssh_port": "ssh.port",
}
_INT_FIELDS = frozenset({"ssh.port"})  # CSV cells are text; these become numbers (when they are digits)


def entry_from_fields(fields: dict[str, str], *, source: str) -> InventoryEntry:
    """An entry from flat dotted keys (CSV columns, `inventory set` arguments); empty values are left out."""
    data: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None or value == "":
            continue
        target = data
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        if last == "parents":
            target[last] = [p.strip() for p in value.split(";") if p.strip()]
        else:
            target[last] = int(value) if key in _INT_FIELDS and value.isascii() and value.isdigit() else value
    return convert(data, InventoryEntry, source=source)


def read_csv(path: str | Path) -> list[InventoryEntry]:
    """Every row or nothing: a bad row is reported with its number and nothing is imported."""
    path = Path(path)
    problems: list[str] = []
    entries: list[InventoryEntry] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
            reader = csv.DictReader(handle)
            unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
            if unknown or "name" not in (reader.fieldnames or []):
                raise ConfigError(f"{path}: unknown columns {unknown} (known: {', '.join(CSV_COLUMNS)})"
                                  if unknown else f"{path}: the header needs a 'name' column")
            for row in reader:
                fields = {CSV_COLUMNS[k]: (v or "").strip() for k, v in row.items() if k is not None}
                try:
                    entries.append(entry_from_fields(fields, source=f"{path}:{reader.line_num}"))
                except ConfigError as exc:
                    problems.append(str(exc))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the CSV file: {exc}") from None
    if problems:
        raise ConfigError(f"{path}: {len(problems)} bad row(s), nothing imported:\n" + "\n".join(problems))
    return entries



def _refuse_cycles(path: str | Path, parents: dict[str, list[str]]) -> None:
    """A parent chain that comes back to itself would group every fault under nobody."""
    done: set[str] = set()

    def visit(name: str, chain: list[str]) -> None:
        if name in chain:
            loop = " -> ".join(chain[chain.index(name):] + [name])
            raise ConfigError(f"{path}: assets.{name}.parents: the parents form a cycle: {loop}")
        if name in done:
            return
        for parent in parents.get(name, []):
            visit(parent, [*chain, name])
        done.add(name)

    for name in parents:
        visit(name, [])
