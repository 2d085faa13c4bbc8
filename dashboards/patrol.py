"""The daily patrol (日常巡檢): pass rate over time, abnormal items by section, items not checked, duration."""

from __future__ import annotations

from dashboards.kit import GREEN, ORANGE, RED, Board, bar_panel, label_variable, line_panel, now, q, stat_panel

UID = "schoolops-patrol"
C = 'checklist=~"$checklist"'
RAN = f"and on (checklist) (schoolops_patrol_last_run_timestamp_seconds{{{C}}} > 0)"  # a checklist that never ran


def build() -> Board:
    board = Board(UID, "schoolops: daily patrol",
                  "The results of each checklist's runs: pass rate, abnormal items by section, items that could "
                  "not be checked, and how long the automated checks took. 日常巡檢。", time_from="now-30d",
                  variables=[label_variable("checklist", "Checklist", "schoolops_patrol_pass_ratio")])
    board.row("Last run")
    board.add(stat_panel("Pass rate", "Normal results among the judged ones (normal + abnormal) of the last run.",
                         "percentunit", now(f"schoolops_patrol_pass_ratio{{{C}}} {RAN}", "{{checklist}}"),
                         steps=[(None, RED), (0.8, ORANGE), (1, GREEN)], no_value="no patrol yet"), w=6, h=5)
    board.add(stat_panel("Last patrol", "When the last run finished.", "dateTimeFromNow",
                         now(f"(schoolops_patrol_last_run_timestamp_seconds{{{C}}} > 0) * 1000", "{{checklist}}"),
                         no_value="no patrol yet"), w=6, h=5)
    board.add(stat_panel("Abnormal items", "Abnormal results of the last run.", "none",
                         now(f"sum by (checklist) (schoolops_patrol_abnormal_items{{{C}}}) {RAN}", "{{checklist}}"),
                         steps=[(None, GREEN), (1, ORANGE)], no_value="no patrol yet"), w=6, h=5)
    board.add(stat_panel("Not checked", "Results that could not be checked (an asset unreachable): never counted "
                         "as normal.", "none",
                         now(f"schoolops_patrol_not_checked_items{{{C}}} {RAN}", "{{checklist}}"),
                         steps=[(None, GREEN), (1, ORANGE)], no_value="no patrol yet"), w=6, h=5)
    board.add(bar_panel("Abnormal items by section", "Abnormal results of the last run, by checklist section.",
                        "none", now(f"schoolops_patrol_abnormal_items{{{C}}} {RAN}", "{{checklist}} · {{section}}"),
                        minimum=0, steps=[(None, GREEN), (1, ORANGE), (3, RED)]), w=24, h=8)

    board.row("History")
    board.add(line_panel("Pass rate history", "Each run's pass rate, held until the next run.", "percentunit",
                         q(f"schoolops_patrol_pass_ratio{{{C}}} {RAN}", "{{checklist}}"),
                         minimum=0, maximum=1), w=12)
    board.add(line_panel("Abnormal items by section over time", "Each run's abnormal results by section.", "none",
                         q(f"schoolops_patrol_abnormal_items{{{C}}} {RAN}", "{{checklist}} · {{section}}"),
                         stacked=True, minimum=0), w=12)
    board.add(line_panel("Duration", "How long each run's automated checks took.", "s",
                         q(f"schoolops_patrol_duration_seconds{{{C}}} {RAN}", "{{checklist}}"), minimum=0), w=12)
    board.add(line_panel("Not checked over time", "Each run's results that could not be checked.", "none",
                         q(f"schoolops_patrol_not_checked_items{{{C}}} {RAN}", "{{checklist}}"), minimum=0), w=12)
    return board
