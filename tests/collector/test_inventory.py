"""The collector's inventory file: valid files load; each mistake is refused naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.inventory import load_inventory
from collector.store import InventoryAsset
from schoolops import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(str(path))
    return message


def test_a_valid_inventory_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
assets:
  - name: sw-core
    kind: network
    site: main
    role: switch
    tier: core
  - name: web-01
    site: main
    role: web
    tier: important
    parents: [sw-core]
  - name: lab-pc-07
""",
    )
    assert load_inventory(path) == [
        InventoryAsset(name="sw-core", kind="network", site="main", role="switch", tier="core", parents=()),
        InventoryAsset(name="web-01", kind="server", site="main", role="web", tier="important", parents=("sw-core",)),
        InventoryAsset(name="lab-pc-07", kind="server", site=None, role=None, tier="normal", parents=()),
    ]


def test_a_parent_may_be_listed_after_its_child(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - {name: web-01, parents: [sw-core]}\n  - {name: sw-core, kind: network}\n")
    assert [a.parents for a in load_inventory(path)] == [("sw-core",), ()]


def test_an_empty_inventory_file_has_no_assets(tmp_path: Path) -> None:
    assert load_inventory(write(tmp_path, "")) == []
    assert load_inventory(write(tmp_path, "assets: []\n")) == []


def test_a_duplicate_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n  - name: db-01\n  - name: web-01\n")
    message = refused(path)
    assert "'web-01'" in message and "twice" in message


def test_an_unknown_parent_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n    parents: [sw-cor]\n")
    message = refused(path)
    assert "web-01" in message and "unknown asset 'sw-cor'" in message


def test_an_asset_cannot_be_its_own_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n    parents: [web-01]\n")
    message = refused(path)
    assert "assets.web-01.parents" in message and "its own parent" in message


def test_a_bad_tier_is_refused_with_its_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n    tier: critical\n")
    message = refused(path)
    assert message.startswith(f"{path}:3: assets[0].tier: ")
    assert "'critical'" in message


def test_a_bad_kind_is_refused_with_its_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n  - name: printer\n    kind: printer\n")
    assert refused(path).startswith(f"{path}:4: assets[1].kind: ")


def test_an_unsafe_asset_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: ../etc\n")
    assert refused(path).startswith(f"{path}:2: assets[0].name: ")


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n    parent: [sw-core]\n")
    message = refused(path)
    assert message.startswith(f"{path}:3: assets[0].parent: ") and "unknown field" in message


def test_a_missing_inventory_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "inventory.yaml"
    with pytest.raises(ConfigError, match="inventory.yaml: file not found"):
        load_inventory(missing)


def test_a_cycle_of_parents_is_refused_and_shown(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "assets:\n"
        "  - {name: core, parents: [access-3]}\n"
        "  - {name: access-2, parents: [core]}\n"
        "  - {name: access-3, parents: [access-2]}\n"
        "  - {name: pc-1, parents: [access-2, core]}\n"
    )
    with pytest.raises(ConfigError, match=r"the parents form a cycle: core -> access-3 -> access-2 -> core"):
        load_inventory(path)


def test_a_diamond_of_parents_is_not_a_cycle(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "assets:\n"
        "  - {name: core}\n"
        "  - {name: access-1, parents: [core]}\n"
        "  - {name: access-2, parents: [core]}\n"
        "  - {name: ap-1, parents: [access-1, access-2]}\n"
    )
    assert [a.name for a in load_inventory(path)] == ["core", "access-1", "access-2", "ap-1"]


def test_ssh_access_and_free_labels_load(tmp_path: Path) -> None:
    from collector.inventory import load_entries
    from collector.network.config import SshConfig

    path = write(tmp_path, """\
assets:
  - name: web-01
    address: 10.20.0.5
    ssh: {username: ops, key_secret: web-01.ssh-key, known_hosts: /etc/schoolops/known_hosts/web-01}
    labels: {backup_uplink_ifindex: "12", 备注: 机房二楼}
""")
    [entry] = load_entries(path)
    assert entry.ssh == SshConfig(username="ops", key_secret="web-01.ssh-key",
                                  known_hosts="/etc/schoolops/known_hosts/web-01", port=22, passphrase_secret=None)
    assert entry.labels == {"backup_uplink_ifindex": "12", "备注": "机房二楼"}


def test_ssh_without_an_address_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "assets:\n  - name: web-01\n    ssh: {username: ops, key_secret: k, known_hosts: /kh}\n")
    message = refused(path)
    assert f"{path}:2: assets[0]: address: " in message and "reached by CLI or by SSH needs an address" in message


def test_a_label_value_too_long_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"assets:\n  - name: web-01\n    labels: {{note: {'x' * 257}}}\n")
    assert "labels" in refused(path)


def test_csv_ssh_columns_fill_the_ssh_section(tmp_path: Path) -> None:
    from collector.inventory import read_csv

    sheet = tmp_path / "servers.csv"
    sheet.write_text("name,address,ssh_username,ssh_key_secret,ssh_known_hosts,ssh_port\n"
                     "web-01,10.20.0.5,ops,web-01.ssh-key,/kh/web-01,2222\n"
                     "web-02,10.20.0.6,ops,web-02.ssh-key,/kh/web-02,\n", encoding="utf-8")
    first, second = read_csv(sheet)
    assert first.ssh is not None and (first.ssh.username, first.ssh.key_secret, first.ssh.port) == ("ops", "web-01.ssh-key", 2222)
    assert second.ssh is not None and second.ssh.port == 22
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ssh_username,ssh_key_secret,ssh_known_hosts\nweb-03,ops,k,/kh\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs an address"):
        read_csv(bad)
