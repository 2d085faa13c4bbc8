"""The committed dashboards are exactly what the modules build; their uids are stable and unique."""

from __future__ import annotations

import shutil
from pathlib import Path

from dashboards import build
from tests.dashboards.shipped import JSON_DIR, UIDS, dashboards


def test_the_committed_json_is_what_the_modules_build_byte_for_byte(tmp_path: Path) -> None:
    build.write_all(tmp_path)
    built = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in JSON_DIR.glob("*.json")}
    assert sorted(built) == sorted(committed), "a dashboard file is missing or extra: run python -m dashboards.build"
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"{stale} differ from what dashboards/ builds: run python -m dashboards.build"


def test_building_twice_gives_the_same_bytes() -> None:
    assert all(build.render(name) == build.render(name) for name in build.DASHBOARDS)


def test_check_mode_names_a_dashboard_edited_by_hand(tmp_path: Path, capsys: object) -> None:
    shutil.copytree(JSON_DIR, tmp_path / "json")
    assert build.main(["--out", str(tmp_path / "json"), "--check"]) == 0
    edited = tmp_path / "json" / "schoolops-patrol.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Pass rate history", "Pass rates"), encoding="utf-8")
    assert build.main(["--out", str(tmp_path / "json"), "--check"]) == 1
    assert "schoolops-patrol.json" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_uids_are_the_file_names_stable_and_unique() -> None:
    shipped = dashboards()
    assert sorted(shipped) == sorted(UIDS)  # a renamed uid breaks every bookmark and link: change it on purpose
    assert all(board["uid"] == name and len(name) <= 40 for name, board in shipped.items())
    titles = [board["title"] for board in shipped.values()]
    assert len(set(titles)) == len(titles)
