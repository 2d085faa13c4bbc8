"""Every dashboard validates against Grafana's JSON Schemas (the dashboard, each panel type's options and
field config, each Prometheus target) and follows the house rules: a unit on every panel, the
``datasource`` variable everywhere, ``$__rate_interval`` in rates, no overlapping panels."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.dashboards.shipped import ROOT, dashboards, panels, targets

# Grafana's published JSON Schemas (Apache 2.0, with their LICENSE and README), kept beside the tests
# so that a clean clone validates the dashboards with nothing else present
SCHEMAS = Path(__file__).resolve().parent / "grafana-schema"
SHIPPED = dashboards()
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = {"__rate_interval", "__range", "__interval"}
# A range selector sits in one of these functions with one of these windows. Rates follow the scrape
# interval ($__rate_interval); "over the shown time range" stats (instant queries, some with a
# panel time override such as this month so far) use $__range. No fixed windows in dashboards.
WINDOWS = {"rate": {"$__rate_interval", "$__range"}, "irate": {"$__rate_interval"},
           "increase": {"$__rate_interval", "$__range"}, "avg_over_time": {"$__range"}, "resets": {"$__range"}}
RANGE_SELECTOR = re.compile(r"\[([^\]]+)\]")
FUNCTION_WINDOW = re.compile(r"\b(\w+)\(\s*[^()\[\]]*\[([^\]]+)\]\s*\)")


@cache
def schema(name: str, definition: str | None = None) -> Draft7Validator:
    document = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text(encoding="utf-8"))
    if definition is not None:
        document = {"$schema": document["$schema"], "$ref": f"#/definitions/{definition}",
                    "definitions": document["definitions"]}
    Draft7Validator.check_schema(document)
    return Draft7Validator(document)


def errors(validator: Draft7Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def test_the_schemas_are_there() -> None:
    assert (SCHEMAS / "dashboard.jsonschema.json").exists(), f"Grafana's JSON Schemas are expected in {SCHEMAS}"
    assert SHIPPED


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_dashboard_validates(name: str) -> None:
    assert errors(schema("dashboard"), SHIPPED[name]) == []


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_panels_options_and_field_config_validate_against_its_type(name: str) -> None:
    for panel in panels(SHIPPED[name]):
        kind = panel["type"]
        assert (SCHEMAS / f"{kind}.jsonschema.json").exists(), f"{panel['title']}: no schema for panel type {kind}"
        assert errors(schema(kind, "Options"), panel.get("options", {})) == [], panel["title"]
        if "FieldConfig" in json.loads((SCHEMAS / f"{kind}.jsonschema.json").read_text())["definitions"]:
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            assert errors(schema(kind, "FieldConfig"), custom) == [], panel["title"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_target_is_a_prometheus_query(name: str) -> None:
    for panel, target in targets(SHIPPED[name]):
        assert errors(schema("prometheus"), target) == [], panel["title"]
        assert target["expr"].strip() and target["refId"], panel["title"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_panel_has_a_unit_an_english_title_and_queries(name: str) -> None:
    for panel in panels(SHIPPED[name]):
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        assert panel["title"].isascii() and panel["title"][0].isupper(), panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"
        assert panel.get("targets"), f"{panel['title']} queries nothing"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_panel_titles_are_unique_within_a_dashboard(name: str) -> None:
    titles = [panel["title"] for panel in panels(SHIPPED[name])]
    assert len(set(titles)) == len(titles), sorted(t for t in titles if titles.count(t) > 1)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_everything_reads_the_datasource_variable(name: str) -> None:
    board = SHIPPED[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert all(v["datasource"] == DATASOURCE for v in variables.values() if v["type"] == "query")
    for panel, target in targets(board):
        assert panel["datasource"] == DATASOURCE and target["datasource"] == DATASOURCE, panel["title"]
    text = json.dumps(board)
    assert "__inputs" not in text and "${DS_" not in text  # file provisioning resolves neither


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_range_selectors_use_grafanas_intervals(name: str) -> None:
    for panel, target in targets(SHIPPED[name]):
        expr = target["expr"]
        selectors = RANGE_SELECTOR.findall(expr)
        wrapped = FUNCTION_WINDOW.findall(expr)
        assert len(wrapped) == len(selectors), f"{panel['title']}: a range selector outside a known function: {expr}"
        for function, window in wrapped:
            assert window in WINDOWS.get(function, set()), f"{panel['title']}: {function}(…[{window}])"
            if window == "$__range":
                assert target["instant"], f"{panel['title']}: [$__range] belongs in an instant query"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_variable_a_query_uses_is_defined(name: str) -> None:
    board = SHIPPED[name]
    defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_VARIABLES
    texts = [target["expr"] for _, target in targets(board)]
    texts += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    used = {m for text in texts for m in re.findall(r"\$\{?(\w+)", text)}
    assert used <= defined, used - defined


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_panels_have_unique_ids_and_do_not_overlap_on_the_grid(name: str) -> None:
    items = SHIPPED[name]["panels"]
    ids = [item["id"] for item in items]
    assert len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for item in items:
        pos = item["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, item["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{item['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = item["title"]


def test_the_committed_files_name_no_path_of_a_build_machine() -> None:
    for path in sorted((ROOT / "dashboards" / "json").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"/(home|root|tmp|work)/", text), path.name


def test_the_checks_catch_what_they_look_for() -> None:
    panel_type_options = {"reduceOptions": {"calcs": []}, "textMode": "huge"}  # not a text mode
    assert errors(schema("stat", "Options"), panel_type_options)
    assert errors(schema("prometheus"), {"refId": "A", "expr": "up", "instant": "yes"})
    assert len(FUNCTION_WINDOW.findall("rate(x[5m])")) == 1 and "5m" not in WINDOWS["rate"]
    assert len(FUNCTION_WINDOW.findall("sum(x[5m:1m])")) == 1  # a subquery is caught as an unknown function
