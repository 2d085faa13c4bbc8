"""The shipped dashboards, read as Grafana reads them, and walks over their panels and queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
JSON_DIR = ROOT / "dashboards" / "json"
DEPLOY = ROOT / "deploy"
UIDS = ("schoolops-director", "schoolops-servers", "schoolops-network", "schoolops-patrol", "schoolops-incidents",
        "schoolops-collector")


def dashboards() -> dict[str, dict[str, Any]]:
    """Every committed dashboard by file name (without .json)."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(JSON_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows' own panels included, rows themselves not)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of the dashboard."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target
