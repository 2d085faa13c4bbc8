"""The collector's in-memory view of every asset: effective labels and the latest applied report.

The store is the source of truth; this view is rebuilt from it at start-up and updated by ingest
after each commit, so /metrics never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store import Asset, LatestReport
from schoolops.wire import Report, decode_report


@dataclass(frozen=True)
class Labels:
    site: str
    role: str
    tier: str


@dataclass
class AssetView:
    name: str
    labels: Labels
    report: Report | None = None
    received_at: float | None = None
    kind: str = "server"
    parents: tuple[str, ...] = ()


class Fleet:
    def __init__(self) -> None:
        self.assets: dict[str, AssetView] = {}
        self._inventory: dict[str, Labels] = {}

    def load(self, assets: list[Asset], latest: list[LatestReport]) -> None:
        self._inventory = {a.name: _labels(a.site, a.role, a.tier) for a in assets if a.labels_source == "inventory"}
        self.assets = {
            a.name: AssetView(a.name, _labels(a.site, a.role, a.tier), kind=a.kind, parents=a.parents) for a in assets
        }
        for item in latest:
            view = self.assets.get(item.asset)
            if view is not None:
                view.report = decode_report(item.body)
                view.received_at = item.received_at

    def apply_inventory(self, assets: list[Asset]) -> None:
        """After an inventory reload: its labels, parents and kinds win; new assets appear."""
        self._inventory = {a.name: _labels(a.site, a.role, a.tier) for a in assets if a.labels_source == "inventory"}
        for asset in assets:
            view = self.assets.get(asset.name)
            if view is None:
                self.assets[asset.name] = AssetView(asset.name, _labels(asset.site, asset.role, asset.tier),
                                                    kind=asset.kind, parents=asset.parents)
                continue
            view.labels, view.kind, view.parents = _labels(asset.site, asset.role, asset.tier), asset.kind, asset.parents

    def labels_for(self, report: Report) -> Labels:
        return self._inventory.get(report.asset) or _labels(
            report.labels.site, report.labels.role, report.labels.tier
        )

    def update(self, report: Report, received_at: float) -> AssetView:
        labels = self.labels_for(report)
        view = self.assets.get(report.asset)
        if view is None:
            view = self.assets[report.asset] = AssetView(report.asset, labels)
        view.labels = labels
        view.report = report
        view.received_at = received_at
        return view


def _labels(site: str | None, role: str | None, tier: str | None) -> Labels:
    return Labels(site=site or "", role=role or "", tier=str(tier) if tier else "normal")
