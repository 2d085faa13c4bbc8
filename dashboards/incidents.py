"""Incidents and on-call: incidents by type and severity, time to acknowledge and resolve, escalations that
reached the director, notifications by channel and their failures."""

from __future__ import annotations

from dashboards.kit import GREEN, ORANGE, RED, Board, Query, bar_panel, line_panel, now, q, stat_panel

UID = "schoolops-incidents"
RATE = "[$__rate_interval]"
PAGED = 'severity=~"P1|P2|P3|P4"'


def build() -> Board:
    board = Board(UID, "schoolops: incidents and on-call",
                  "Incidents by type and severity, how fast they are acknowledged and resolved, escalations that "
                  "reached the director, and the notifications sent on each channel. 故障處理與值班。",
                  time_from="now-7d")
    board.row("Incidents")
    board.add(line_panel("Incidents opened by type", "Incidents opened, by fault type.", "short",
                         q(f"sum by (type) (increase(schoolops_incidents_opened_total{RATE}))", "{{type}}"),
                         bars=True, stacked=True, minimum=0), w=12)
    board.add(line_panel("Incidents opened by severity", "Incidents opened, by severity.", "short",
                         q(f"sum by (severity) (increase(schoolops_incidents_opened_total{{{PAGED}}}{RATE}))",
                           "{{severity}}"), bars=True, stacked=True, minimum=0), w=12)
    board.add(line_panel("Open incidents by severity", "Incidents open or acknowledged, by severity.", "short",
                         q(f"sum by (severity) (schoolops_incidents_open{{{PAGED}}})", "{{severity}}"),
                         stacked=True, minimum=0), w=12)
    board.add(line_panel("Open incidents by type", "Incidents open or acknowledged, by fault type.", "short",
                         q("sum by (type) (schoolops_incidents_open)", "{{type}}"), stacked=True, minimum=0), w=12)
    board.add(stat_panel("Opened in the time range", "Incidents opened in the shown time range, by severity.",
                         "none", now(f"sum by (severity) (increase(schoolops_incidents_opened_total{{{PAGED}}}"
                                     "[$__range]))", "{{severity}}"), decimals=0), w=12, h=5)
    board.add(bar_panel("Faults by rule", "The rules that fired most in the shown time range.", "none",
                        now("topk(10, sum by (rule) (increase(schoolops_faults_fired_total[$__range])))", "{{rule}}"),
                        minimum=0), w=12, h=5)

    board.row("Response")
    board.add(stat_panel("Mean time to acknowledge", "From opening to the first acknowledgement, over the shown "
                         "time range. 平均響應時間。", "s",
                         now("sum(increase(schoolops_incident_time_to_acknowledge_seconds_sum[$__range])) / "
                             "sum(increase(schoolops_incident_time_to_acknowledge_seconds_count[$__range]))"),
                         steps=[(None, GREEN), (900, ORANGE), (1800, RED)], no_value="none acknowledged"), w=6, h=6)
    board.add(stat_panel("Mean time to resolve", "From opening to resolution, over the shown time range. "
                         "平均修復時間。", "s",
                         now("sum(increase(schoolops_incident_time_to_resolve_seconds_sum[$__range])) / "
                             "sum(increase(schoolops_incident_time_to_resolve_seconds_count[$__range]))"),
                         steps=[(None, GREEN), (4 * 3600, ORANGE), (24 * 3600, RED)], no_value="none resolved"),
              w=6, h=6)
    board.add(bar_panel("Time to acknowledge", "How many incidents were acknowledged within each time (upper bound "
                        "in seconds), over the shown time range.", "none",
                        Query("sum by (le) (increase(schoolops_incident_time_to_acknowledge_seconds_bucket[$__range]))",
                              "{{le}}", instant=True, heatmap=True), minimum=0), w=6, h=6)
    board.add(bar_panel("Time to resolve", "How many incidents were resolved within each time (upper bound in "
                        "seconds), over the shown time range.", "none",
                        Query("sum by (le) (increase(schoolops_incident_time_to_resolve_seconds_bucket[$__range]))",
                              "{{le}}", instant=True, heatmap=True), minimum=0), w=6, h=6)

    board.row("Escalation and notifications")
    board.add(stat_panel("Escalations to the director", "Escalation steps that reached the director in the shown "
                         "time range (pages, reminders, progress reports, summaries, the security clock). "
                         "上報主任。", "none",
                         now("sum by (severity) (increase(schoolops_escalations_to_director_total[$__range]))",
                             "{{severity}}"), decimals=0, steps=[(None, GREEN), (1, ORANGE)]), w=8, h=6)
    board.add(line_panel("Escalations to the director over time", "Escalation steps that reached the director, "
                         "by kind.", "short",
                         q(f"sum by (kind) (increase(schoolops_escalations_to_director_total{RATE}))", "{{kind}}"),
                         bars=True, stacked=True, minimum=0), w=16, h=6)
    board.add(line_panel("Notifications by channel", "Notifications sent, merged into digests (rate limits) or "
                         "given up, by channel. 通知。", "short",
                         q(f"sum by (channel, outcome) (increase(schoolops_notifications_total{RATE}))",
                           "{{channel}} {{outcome}}"), bars=True, stacked=True, minimum=0), w=12)
    board.add(line_panel("Delivery failures by channel", "Failed delivery attempts (retried, or given up and "
                         "moved to the person's next contact).", "short",
                         q(f"sum by (channel) (increase(schoolops_notification_failures_total{RATE}))", "{{channel}}"),
                         bars=True, minimum=0, steps=[(None, GREEN), (1, RED)]), w=12)
    return board
