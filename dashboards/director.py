"""The director's overview: is the school's IT healthy, what is broken now, how fast the office responds."""

from __future__ import annotations

from dashboards.kit import GREEN, ORANGE, RED, Board, bar_panel, now, rows, stat_panel, table_panel

UID = "schoolops-director"
RAN = "and on (checklist) (schoolops_patrol_last_run_timestamp_seconds > 0)"  # a checklist that never ran has no rate


def build() -> Board:
    board = Board(UID, "schoolops: director overview",
                  "Health by site, incidents open now, the P1/P2 list, response times this month, the daily patrol "
                  "and the availability of key services. 處室主任總覽。", time_from="now-24h")
    board.row("Health now")
    board.add(stat_panel("Assets reporting", "Assets whose latest report or poll is fresh.", "none",
                         now("sum(schoolops_asset_up)")), w=4, h=4)
    board.add(stat_panel("Assets down", "Assets that stopped reporting (an agent silent, a device not answering).",
                         "none", now("count(schoolops_asset_up == 0) or vector(0)"),
                         steps=[(None, GREEN), (1, RED)]), w=4, h=4)
    board.add(stat_panel("Major incidents open", "P1/P2 incidents (特別重大, 重大) open or acknowledged now.", "none",
                         now('sum(schoolops_incidents_open{severity=~"P1|P2"})'),
                         steps=[(None, GREEN), (1, RED)]), w=4, h=4)
    board.add(stat_panel("Open incidents by severity", "Incidents open or acknowledged now. 未結事件。", "none",
                         now('sum by (severity) (schoolops_incidents_open{severity=~"P1|P2|P3|P4"})', "{{severity}}"),
                         steps=[(None, GREEN), (1, ORANGE)]), w=12, h=4)
    board.add(bar_panel("Health by site", "Share of each site's assets reporting now (servers, network devices, "
                        "services). 各校區資產在線比例。", "percentunit",
                        now("site:schoolops_asset_up:avg", "{{site}}"), minimum=0, maximum=1,
                        steps=[(None, RED), (0.9, ORANGE), (1, GREEN)]), w=24, h=6)

    board.row("Major incidents (P1/P2)")
    board.add(table_panel("Open P1/P2 incidents", "Each open or acknowledged major incident and how long it has been "
                          "open. 重大故障清單。", "dtdurations",
                          rows("time() - schoolops_major_incident_opened_timestamp_seconds"),
                          columns={"incident": "Incident", "severity": "Severity", "title": "What", "asset": "Asset",
                                   "site": "Site", "state": "State", "Value": "Open for"},
                          no_value="No P1/P2 incident is open", sort_by="Value"), w=24, h=7)

    board.row("This month")
    month = "now/M"  # this month so far
    board.add(stat_panel("Mean time to acknowledge", "From an incident's opening to its first acknowledgement, "
                         "this month so far. 平均響應時間。", "s",
                         now("sum(increase(schoolops_incident_time_to_acknowledge_seconds_sum[$__range])) / "
                             "sum(increase(schoolops_incident_time_to_acknowledge_seconds_count[$__range]))"),
                         steps=[(None, GREEN), (900, ORANGE), (1800, RED)], no_value="none this month",
                         time_from=month), w=6, h=5)
    board.add(stat_panel("Mean time to resolve", "From an incident's opening to its resolution, this month so far. "
                         "平均修復時間。", "s",
                         now("sum(increase(schoolops_incident_time_to_resolve_seconds_sum[$__range])) / "
                             "sum(increase(schoolops_incident_time_to_resolve_seconds_count[$__range]))"),
                         steps=[(None, GREEN), (4 * 3600, ORANGE), (24 * 3600, RED)], no_value="none this month",
                         time_from=month), w=6, h=5)
    board.add(stat_panel("Incidents opened", "Incidents opened this month so far, by severity.", "none",
                         now('sum by (severity) (increase(schoolops_incidents_opened_total{severity=~"P1|P2|P3|P4"}'
                             '[$__range]))', "{{severity}}"), decimals=0, time_from=month), w=12, h=5)

    board.row("Daily patrol and key services")
    board.add(stat_panel("Patrol pass rate", "Normal results among the judged ones in each checklist's last run. "
                         "日常巡檢合格率。", "percentunit", now(f"schoolops_patrol_pass_ratio {RAN}", "{{checklist}}"),
                         steps=[(None, RED), (0.8, ORANGE), (1, GREEN)], no_value="no patrol yet"), w=6, h=5)
    board.add(stat_panel("Last patrol", "When each checklist's last run finished. 最近一次巡檢。", "dateTimeFromNow",
                         now("(schoolops_patrol_last_run_timestamp_seconds > 0) * 1000", "{{checklist}}"),
                         no_value="no patrol yet"), w=6, h=5)
    board.add(stat_panel("Abnormal patrol items", "Abnormal results in each checklist's last run.", "none",
                         now(f"sum by (checklist) (schoolops_patrol_abnormal_items) {RAN}", "{{checklist}}"),
                         steps=[(None, GREEN), (1, ORANGE)], no_value="no patrol yet"), w=12, h=5)
    board.add(bar_panel("Key services: availability", "Share of the shown time range each service probe succeeded. "
                        "重要服務可用率。", "percentunit",
                        now("avg_over_time(schoolops_probe_up[$__range])", "{{asset}} · {{probe}}"),
                        minimum=0, maximum=1, steps=[(None, RED), (0.99, ORANGE), (0.999, GREEN)]), w=12, h=8)
    board.add(bar_panel("Core assets: availability", "Share of the shown time range each core asset (tier core) was "
                        "reporting. 核心設備可用率。", "percentunit",
                        now('avg_over_time(schoolops_asset_up[$__range]) and on (asset) '
                            'schoolops_asset_info{tier="core"}', "{{asset}}"),
                        minimum=0, maximum=1, steps=[(None, RED), (0.99, ORANGE), (0.999, GREEN)]), w=12, h=8)
    return board

