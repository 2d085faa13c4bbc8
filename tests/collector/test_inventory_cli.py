"""Editing the inventory from the CLI and importing a spreadsheet: every row or nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support import cli, write_yaml

HEADER = "name,kind,site,role,tier,address,parents,snmp_version,snmp_community_secret\n"


def setup(tmp_path: Path) -> tuple[str, Path]:
    inventory = tmp_path / "inventory.yaml"
    config = write_yaml(tmp_path / "collector.yaml", {"data_dir": str(tmp_path / "data"), "inventory_file": str(inventory)})
    return str(config), inventory


def test_set_adds_and_changes_and_remove_respects_parents(tmp_path: Path) -> None:
    config, inventory = setup(tmp_path)
    cli("inventory", "set", "core-sw-1", "kind=network", "address=10.20.0.1", "tier=core", "snmp.version=2c",
        "snmp.community_secret=snmp.public", "--config", config)
    cli("inventory", "set", "lab-sw-2", "kind=network", "address=10.20.0.2", "parents=core-sw-1", "--config", config)
    cli("inventory", "set", "lab-sw-2", "site=north-building", "--config", config)
    data = yaml.safe_load(inventory.read_text())["assets"]
    assert [a["name"] for a in data] == ["core-sw-1", "lab-sw-2"]
    assert data[1]["site"] == "north-building" and data[1]["parents"] == ["core-sw-1"]
    assert data[0]["snmp"]["community_secret"] == "snmp.public" and "public" not in data[0]["snmp"].get("community", "")

    bad = cli("inventory", "set", "lab-sw-3", "kind=network", "snmp.version=2c", "snmp.community_secret=x", "--config", config,
              check=False)
    assert bad.returncode == 2 and "address" in bad.stderr  # a polled device needs an address
    refused = cli("inventory", "remove", "core-sw-1", "--config", config, check=False)
    assert refused.returncode == 2 and "parent of lab-sw-2" in refused.stderr
    assert len(yaml.safe_load(inventory.read_text())["assets"]) == 2  # nothing changed
    cli("inventory", "remove", "lab-sw-2", "--config", config)
    assert [a["name"] for a in yaml.safe_load(inventory.read_text())["assets"]] == ["core-sw-1"]


def test_csv_import_with_a_bad_row_reports_it_and_imports_nothing(tmp_path: Path) -> None:
    config, inventory = setup(tmp_path)
    cli("inventory", "set", "core-sw-1", "kind=network", "address=10.20.0.1", "--config", config)
    before = inventory.read_text()
    sheet = tmp_path / "switches.csv"
    sheet.write_text(HEADER
                     + "access-sw-1,network,north,access,normal,10.20.1.1,core-sw-1,2c,snmp.public\n"
                     + "access-sw-2,network,north,access,urgent,10.20.1.2,core-sw-1,2c,snmp.public\n"  # bad tier
                     + "access sw 3,network,north,access,normal,10.20.1.3,core-sw-1,2c,snmp.public\n")  # bad name
    result = cli("inventory", "import", str(sheet), "--config", config, check=False)
    assert result.returncode == 2
    assert "2 bad row(s), nothing imported" in result.stderr
    assert f"{sheet}:3: tier" in result.stderr and f"{sheet}:4: name" in result.stderr
    assert inventory.read_text() == before

    sheet.write_text(HEADER + "access-sw-1,network,north,access,normal,10.20.1.1,core-sw-1,2c,snmp.public\n"
                     + "access-sw-2,network,north,access,important,10.20.1.2,core-sw-1,2c,snmp.public\n")
    cli("inventory", "import", str(sheet), "--config", config)
    names = [a["name"] for a in yaml.safe_load(inventory.read_text())["assets"]]
    assert names == ["core-sw-1", "access-sw-1", "access-sw-2"]
    again = cli("inventory", "import", str(sheet), "--config", config, check=False)
    assert again.returncode == 2 and "already in the inventory" in again.stderr
