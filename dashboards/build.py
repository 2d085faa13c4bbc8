"""Build the dashboards' JSON: ``python -m dashboards.build [--out DIR] [--check]``.

``--check`` writes nothing and fails when the committed JSON differs from what the modules build
(the tests run the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import collector_health, director, incidents, network, patrol, servers
from dashboards.kit import Board

JSON_DIR = Path(__file__).parent / "json"

# uid → the module that builds it; the JSON file is named after the uid
DASHBOARDS: dict[str, Callable[[], Board]] = {
    director.UID: director.build,
    servers.UID: servers.build,
    network.UID: network.build,
    patrol.UID: patrol.build,
    incidents.UID: incidents.build,
    collector_health.UID: collector_health.build,
}


def render(name: str) -> str:
    """One dashboard as the JSON text Grafana provisions (stable: sorted keys, two-space indent)."""
    board = DASHBOARDS[name]()
    return json.dumps(board.build().build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """The dashboards whose file in ``directory`` differs from what the modules build, or is missing."""
    return [name for name in DASHBOARDS
            if not (directory / f"{name}.json").exists()
            or (directory / f"{name}.json").read_text(encoding="utf-8") != render(name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="where to write the JSON (default: dashboards/json)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        different = stale(args.out)
        for name in different:
            print(f"{args.out / name}.json differs from what dashboards/ builds: run python -m dashboards.build",
                  file=sys.stderr)
        return 1 if different else 0
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
