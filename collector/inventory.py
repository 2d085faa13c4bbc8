"""The collector's inventory file: assets with authoritative site/role/tier labels and parents.

Network devices, services and their credentials join this file in later capabilities; for now it
names servers (and any asset) so their labels do not depend on each agent's config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta, Struct

from schoolops import ConfigError
from schoolops.conf import load_file
from schoolops.wire import AssetName, Label, Tier

from collector.network.config import CliConfig, Host, ProbeConfig, SnmpConfig

from collector.store import InventoryAsset

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
    probes: list[ProbeConfig] = []

    def __post_init__(self) -> None:
        if (self.snmp or self.cli) and self.address is None:
            raise ValueError("address: a device polled by SNMP or reached by CLI needs an address")
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError("probes: probe names must be unique within an asset")


class InventoryFile(Struct, **Strict):
    assets: list[InventoryEntry] = []


def load_inventory(path: str | Path) -> list[InventoryAsset]:
    inventory = load_file(path, InventoryFile)
    names = [entry.name for entry in inventory.assets]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{path}: assets: {name!r} is listed twice")
        seen.add(name)
    for entry in inventory.assets:
        for parent in entry.parents:
            if parent not in seen:
                raise ConfigError(f"{path}: assets.{entry.name}.parents: unknown asset {parent!r}")
            if parent == entry.name:
                raise ConfigError(f"{path}: assets.{entry.name}.parents: an asset cannot be its own parent")
    _refuse_cycles(path, {entry.name: entry.parents for entry in inventory.assets})
    return [
        InventoryAsset(name=e.name, kind=e.kind, site=e.site, role=e.role, tier=str(e.tier), parents=tuple(e.parents))
        for e in inventory.assets
    ]



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
