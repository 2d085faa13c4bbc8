"""Grafana provisioning, the compose file and the collector's image, checked strictly: Grafana silently
ignores a misspelled key, so every key must be one Grafana reads, and the files must agree with each other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.shipped import DEPLOY, JSON_DIR, ROOT, dashboards

PROVISIONING = DEPLOY / "grafana" / "provisioning"

# The keys Grafana's file provisioning reads (apiVersion 1), from its provisioning documentation and
# the config types in pkg/services/provisioning (datasources and dashboards).
DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources"}
DATASOURCE_KEYS = {"orgId", "orgName", "version", "name", "type", "access", "url", "user", "database", "basicAuth",
                   "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData", "secureJsonData",
                   "editable", "uid"}
PROMETHEUS_JSON_DATA_KEYS = {"httpMethod", "timeInterval", "queryTimeout", "manageAlerts", "prometheusType",
                             "prometheusVersion", "cacheLevel", "incrementalQuerying", "incrementalQueryOverlapWindow",
                             "disableRecordingRules", "customQueryParameters", "exemplarTraceIdDestinations",
                             "tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName"}
DASHBOARD_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {"name", "type", "orgId", "folder", "folderUid", "editable", "options", "disableDeletion",
                 "updateIntervalSeconds", "allowUiUpdates"}
FILE_PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}


def unknown_keys(data: Any, allowed: set[str], where: str) -> list[str]:
    assert isinstance(data, dict), f"{where} is not a mapping"
    return [f"{where}.{key}" for key in data if key not in allowed]


def datasource_problems(document: dict[str, Any]) -> list[str]:
    problems = unknown_keys(document, DATASOURCE_FILE_KEYS, "")
    if document.get("apiVersion") != 1:
        problems.append("apiVersion must be 1")
    for n, source in enumerate(document.get("datasources") or []):
        problems += unknown_keys(source, DATASOURCE_KEYS, f"datasources[{n}]")
        problems += [f"datasources[{n}] needs {key}" for key in ("name", "type", "uid", "url") if not source.get(key)]
        if source.get("type") == "prometheus":
            problems += unknown_keys(source.get("jsonData", {}), PROMETHEUS_JSON_DATA_KEYS,
                                     f"datasources[{n}].jsonData")
    return problems


def provider_problems(document: dict[str, Any]) -> list[str]:
    problems = unknown_keys(document, DASHBOARD_FILE_KEYS, "")
    if document.get("apiVersion") != 1:
        problems.append("apiVersion must be 1")
    for n, provider in enumerate(document.get("providers") or []):
        problems += unknown_keys(provider, PROVIDER_KEYS, f"providers[{n}]")
        if provider.get("type", "file") == "file":
            problems += unknown_keys(provider.get("options", {}), FILE_PROVIDER_OPTIONS, f"providers[{n}].options")
            if not provider.get("options", {}).get("path"):
                problems.append(f"providers[{n}].options.path is missing")
    return problems


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def compose() -> dict[str, Any]:
    return load(DEPLOY / "compose.yaml")


@pytest.mark.parametrize("path", sorted((PROVISIONING / "datasources").glob("*.yaml")), ids=lambda p: p.name)
def test_datasource_provisioning_has_only_keys_grafana_reads(path: Path) -> None:
    assert datasource_problems(load(path)) == []


@pytest.mark.parametrize("path", sorted((PROVISIONING / "dashboards").glob("*.yaml")), ids=lambda p: p.name)
def test_dashboard_provisioning_has_only_keys_grafana_reads(path: Path) -> None:
    assert provider_problems(load(path)) == []


def test_the_checks_refuse_a_misspelled_key() -> None:
    source = load(PROVISIONING / "datasources" / "schoolops.yaml")
    source["datasources"][0]["isDefualt"] = True
    source["datasources"][0]["jsonData"]["timeinterval"] = "15s"
    assert datasource_problems(source) == ["datasources[0].isDefualt", "datasources[0].jsonData.timeinterval"]
    provider = load(PROVISIONING / "dashboards" / "schoolops.yaml")
    provider["providers"][0]["options"]["foldersFromFileStructure"] = True
    provider["providers"][0]["allowUIUpdates"] = False
    assert provider_problems(provider) == ["providers[0].allowUIUpdates",
                                           "providers[0].options.foldersFromFileStructure"]


def test_the_provisioned_pieces_fit_together() -> None:
    """The datasource is Prometheus where compose runs it; the provider reads where compose mounts the JSON."""
    (source,) = load(PROVISIONING / "datasources" / "schoolops.yaml")["datasources"]
    (provider,) = load(PROVISIONING / "dashboards" / "schoolops.yaml")["providers"]
    services = compose()["services"]
    listen = next(arg.split("=", 1)[1] for arg in services["prometheus"]["command"]
                  if arg.startswith("--web.listen-address="))
    assert source["type"] == "prometheus" and source["url"] == f"http://{listen}" and source["isDefault"] is True
    assert all(v["query"] == source["type"] for board in dashboards().values()
               for v in board["templating"]["list"] if v["name"] == "datasource")
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in services["grafana"]["volumes"] if volume.startswith("."))
    assert (DEPLOY / next(h for h, inside in mounts.items() if inside == provider["options"]["path"])).resolve() \
        == JSON_DIR
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/schoolops-director.json"
    for kind in ("datasources", "dashboards"):
        assert (DEPLOY / next(h for h, inside in mounts.items() if inside == f"/etc/grafana/provisioning/{kind}")
                ).resolve() == PROVISIONING / kind


def test_compose_runs_the_collector_prometheus_and_grafana_from_files_that_exist() -> None:
    document = compose()
    assert set(document) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    services = document["services"]
    assert set(services) == {"collector", "prometheus", "grafana"}
    service_keys = {"build", "image", "network_mode", "restart", "volumes", "command", "environment", "depends_on",
                    "stop_grace_period", "ports", "user", "cap_add"}
    for name, service in services.items():
        assert set(service) <= service_keys, (name, set(service) - service_keys)
        assert service.get("restart") == "unless-stopped", name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source.startswith("/") or source in document["volumes"], f"{name}: unknown volume {source}"
        assert set(service.get("depends_on", [])) <= set(services), name
    build = services["collector"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    mounted = dict(volume.rsplit(":", 2)[:2] for volume in services["prometheus"]["volumes"] if volume.startswith("."))
    assert (DEPLOY / next(h for h, i in mounted.items() if i == "/etc/prometheus/prometheus.yml")).resolve() \
        == DEPLOY / "prometheus" / "prometheus.yml"
    rules = load(DEPLOY / "prometheus" / "prometheus.yml")["rule_files"]
    assert rules == ["rules/*.yml"] and "/etc/prometheus/rules" in mounted.values()


def test_the_image_copies_what_the_collector_needs() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    assert sources and all((ROOT / source).exists() for source in sources), sources
    assert {"collector/", "agent/", "schoolops/", "alerts/", "runbooks/", "pyproject.toml"} <= set(sources)
    assert re.search(r'pip install .*-e "\.\[collector\]"', text)  # editable: the shipped alerts/ and runbooks/ resolve
    assert "USER schoolops" in text and 'CMD ["serve", "--config", "/etc/schoolops/collector.yaml"]' in text
