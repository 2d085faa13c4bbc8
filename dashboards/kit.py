"""What every schoolops dashboard shares: the data source variable, queries, panel kinds and the grid.

Every panel and every target reads the Prometheus data source chosen in the ``datasource`` variable
(file provisioning does not resolve ``__inputs``), every panel states its unit, and panels are
placed on Grafana's 24-column grid row by row, so a dashboard module only says what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "schoolops"
WIDTH = 24  # Grafana's grid

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"
P = TypeVar("P", stat.Panel, timeseries.Panel, bargauge.Panel, table.Panel)


@dataclass(frozen=True)
class Query:
    """One Prometheus target: instant (a current value) or a range (a line over time)."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # one row per series, labels as columns
    heatmap: bool = False  # cumulative histogram buckets turned into per-bucket counts

    def target(self, ref: str) -> prometheus.Dataquery:
        target = prometheus.Dataquery().expr(self.expr).ref_id(ref).datasource(DATASOURCE)
        target = target.instant() if self.instant else target.range()
        if self.legend:
            target = target.legend_format(self.legend)
        if self.table:
            target = target.format(PromQueryFormat.TABLE)
        elif self.heatmap:
            target = target.format(PromQueryFormat.HEATMAP)
        return target


def q(expr: str, legend: str = "") -> Query:
    """A range query: a line over the dashboard's time range."""
    return Query(expr, legend)


def now(expr: str, legend: str = "") -> Query:
    """An instant query: the value now (or over ``$__range`` when the expression says so)."""
    return Query(expr, legend, instant=True)


def rows(expr: str) -> Query:
    """An instant query shown as a table: one row per series."""
    return Query(expr, instant=True, table=True)


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=colour) for value, colour in steps]))


def value_text(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Show values as words, e.g. ``{"1": ("up", "green")}``."""
    return [model.ValueMap(options={value: model.ValueMappingResult(text=text, color=colour, index=index)
                                    for index, (value, (text, colour)) in enumerate(mapping.items())})]


def unit_of(column: str, unit: str) -> tuple[model.MatcherConfig, list[model.DynamicConfigValue]]:
    """A per-column unit for a table whose columns differ."""
    return model.MatcherConfig(id_val="byName", options=column), [model.DynamicConfigValue(id_val="unit", value=unit)]


def _common(panel: P, title: str, description: str, unit: str, queries: Sequence[Query]) -> P:
    panel = panel.title(title).description(description).datasource(DATASOURCE).unit(unit)
    refs = "ABCDEFGHIJ"
    return panel.targets([query.target(refs[n]) for n, query in enumerate(queries)])


def stat_panel(title: str, description: str, unit: str, *queries: Query, steps: Sequence[tuple[float | None, str]] = (),
               mappings: list[model.ValueMapping] | None = None, no_value: str = "", decimals: float | None = None,
               time_from: str | None = None) -> stat.Panel:
    panel = _common(stat.Panel(), title, description, unit, queries)
    panel = (panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .graph_mode(common.BigValueGraphMode.NONE).color_mode(common.BigValueColorMode.BACKGROUND)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME if len(queries) > 1 or "{{" in queries[0].legend
                        else common.BigValueTextMode.AUTO))
    panel = panel.thresholds(thresholds(*(steps or [(None, BLUE)])))
    if mappings:
        panel = panel.mappings(mappings)
    if no_value:
        panel = panel.no_value(no_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def line_panel(title: str, description: str, unit: str, *queries: Query, stacked: bool = False, bars: bool = False,
               minimum: float | None = None, maximum: float | None = None,
               steps: Sequence[tuple[float | None, str]] = (),
               mappings: list[model.ValueMapping] | None = None) -> timeseries.Panel:
    panel = _common(timeseries.Panel(), title, description, unit, queries)
    panel = (panel.legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                          .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING))
             .line_width(1).fill_opacity(20 if stacked or bars else 10).span_nulls(False))
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    if steps:
        panel = panel.thresholds(thresholds(*steps))
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def bar_panel(title: str, description: str, unit: str, *queries: Query, minimum: float | None = None,
              maximum: float | None = None, steps: Sequence[tuple[float | None, str]] = (), no_value: str = "",
              time_from: str | None = None) -> bargauge.Panel:
    panel = _common(bargauge.Panel(), title, description, unit, queries)
    panel = (panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .display_mode(common.BarGaugeDisplayMode.GRADIENT).orientation(common.VizOrientation.HORIZONTAL)
             .show_unfilled(True))
    panel = panel.thresholds(thresholds(*(steps or [(None, BLUE)])))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    if no_value:
        panel = panel.no_value(no_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def table_panel(title: str, description: str, unit: str, query: Query, *, columns: dict[str, str],
                units: dict[str, str] | None = None, mappings: list[model.ValueMapping] | None = None,
                steps: Sequence[tuple[float | None, str]] = (), no_value: str = "",
                sort_by: str | None = None) -> table.Panel:
    """``columns`` maps the labels (and ``Value``) to show, in order, to their headers; others are hidden."""
    panel = _common(table.Panel(), title, description, unit, [query])
    panel = (panel.with_transformation(model.DataTransformerConfig(
        id_val="filterFieldsByName", options={"include": {"names": list(columns)}}))
        .with_transformation(model.DataTransformerConfig(id_val="organize", options={
            "indexByName": {name: index for index, name in enumerate(columns)}, "renameByName": columns})))
    for column, column_unit in (units or {}).items():
        matcher, properties = unit_of(column, column_unit)
        panel = panel.with_override(matcher, properties)
    if mappings:
        panel = panel.mappings(mappings)
    if steps:
        panel = panel.thresholds(thresholds(*steps))
    if no_value:
        panel = panel.no_value(no_value)
    if sort_by:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(columns.get(sort_by, sort_by))
                               .desc(True)])
    return panel


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, title: str, metric: str, *, label: str = "", multi: bool = True,
                   description: str = "") -> dashboard.QueryVariable:
    """A variable listing one label's values, e.g. every ``asset`` of ``node_boot_time_seconds{site=~"$site"}``."""
    query = f"label_values({metric}, {label or name})"
    variable = (dashboard.QueryVariable(name).label(title).datasource(DATASOURCE).query(query).definition(query)
                .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC))
    if description:
        variable = variable.description(description)
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


@dataclass
class Board:
    """A dashboard being laid out: panels fill each line of the grid left to right, rows start new lines."""

    uid: str
    title: str
    description: str
    time_from: str = "now-6h"
    variables: list[Builder[model.VariableModel]] = field(default_factory=list)
    _items: list[tuple[str, Any, int, int]] = field(default_factory=list)

    def row(self, title: str) -> Board:
        self._items.append(("row", dashboard.Row(title), WIDTH, 1))
        return self

    def add(self, panel: Any, w: int = 12, h: int = 8) -> Board:
        if not 0 < w <= WIDTH:
            raise ValueError(f"panel width {w} outside the grid")
        self._items.append(("panel", panel, w, h))
        return self

    def build(self) -> dashboard.Dashboard:
        board = (dashboard.Dashboard(self.title).uid(self.uid).description(self.description).tags([TAG])
                 .timezone("browser").time(self.time_from, "now").refresh("1m").editable()
                 .tooltip(model.DashboardCursorSync.CROSSHAIR)
                 .link(dashboard.DashboardLink("schoolops").type(model.DashboardLinkType.DASHBOARDS).tags([TAG])
                       .as_dropdown(True).include_vars(False).keep_time(True))
                 .with_variable(datasource_variable()))
        for variable in self.variables:
            board = board.with_variable(variable)
        x = y = line_height = 0
        for number, (kind, item, w, h) in enumerate(self._items, start=1):
            if kind == "row" or x + w > WIDTH:
                x, y, line_height = 0, y + line_height, 0
            position = model.GridPos(h=h, w=w, x=x, y=y)
            if kind == "row":
                board = board.with_row(item.id(number).grid_pos(position))
                y += 1
                continue
            board = board.with_panel(item.id(number).grid_pos(position))
            x += w
            line_height = max(line_height, h)
        return board
