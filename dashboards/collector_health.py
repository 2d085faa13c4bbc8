"""The collector itself: ingest rate, rejects by reason, SNMP poll cycles and overruns, traps, agents' spools."""

from __future__ import annotations

from dashboards.kit import GREEN, ORANGE, RED, Board, label_variable, line_panel, now, q, stat_panel, value_text

UID = "schoolops-collector"
J = 'job=~"$job"'
RATE = "[$__rate_interval]"


def build() -> Board:
    board = Board(UID, "schoolops: the collector",
                  "The collector's own health: reports accepted and rejected, ingest latency, SNMP poll cycles and "
                  "overruns, traps, the agents' spools and the collector process. 採集器自身狀態。", variables=[
                      label_variable("job", "Job", "schoolops_build_info",
                                     description="The Prometheus job that scrapes the collector."),
                  ])
    board.row("Status")
    board.add(stat_panel("Collector", "Whether Prometheus reaches the collector's /metrics.", "none",
                         now(f"up{{{J}}}", "{{instance}}"), steps=[(None, RED), (1, GREEN)],
                         mappings=value_text({"1": ("up", GREEN), "0": ("down", RED)})), w=6, h=4)
    board.add(stat_panel("Alert rules", "Whether the last load of the rule files (alerts/) succeeded; a bad file "
                         "keeps the rules loaded before.", "none",
                         now(f"schoolops_rules_last_reload_successful{{{J}}}", "{{instance}}"),
                         steps=[(None, RED), (1, GREEN)],
                         mappings=value_text({"1": ("loaded", GREEN), "0": ("reload failed", RED)})), w=6, h=4)
    board.add(stat_panel("Assets reporting", "Assets whose latest report or poll is fresh.", "none",
                         now(f"sum(schoolops_asset_up{{{J}}})")), w=6, h=4)
    board.add(stat_panel("Version", "The collector's version.", "none",
                         now(f"count by (version) (schoolops_build_info{{{J}}})", "{{version}}")), w=6, h=4)

    board.row("Ingest")
    board.add(line_panel("Reports accepted", "Agent reports accepted per second: applied, or a duplicate of one "
                         "already applied.", "reqps",
                         q(f"sum by (result) (rate(schoolops_reports_accepted_total{{{J}}}{RATE}))", "{{result}}"),
                         stacked=True, minimum=0), w=12)
    board.add(line_panel("Reports rejected by reason", "Agent reports refused per second, by reason (token, "
                         "schema, size, …).", "reqps",
                         q(f"sum by (reason) (rate(schoolops_reports_rejected_total{{{J}}}{RATE}))", "{{reason}}"),
                         stacked=True, minimum=0), w=12)
    board.add(line_panel("Ingest latency", "Time to authenticate, validate and store a report.", "s",
                         q(f"histogram_quantile(0.5, sum by (le) (rate(schoolops_ingest_duration_seconds_bucket"
                           f"{{{J}}}{RATE})))", "median"),
                         q(f"histogram_quantile(0.99, sum by (le) (rate(schoolops_ingest_duration_seconds_bucket"
                           f"{{{J}}}{RATE})))", "99th percentile"), minimum=0), w=12)
    board.add(line_panel("Reports lost", "Sequence numbers never received: reports the agents dropped.", "short",
                         q(f"sum(increase(schoolops_reports_missing_total{{{J}}}{RATE}))", "lost"),
                         bars=True, minimum=0, steps=[(None, GREEN), (1, RED)]), w=12)

    board.row("Pollers and traps")
    board.add(line_panel("SNMP poll cycle", "How long the last SNMP poll cycle took.", "s",
                         q(f"schoolops_snmp_cycle_duration_seconds{{{J}}}", "cycle"), minimum=0), w=6)
    board.add(line_panel("Poll overruns", "Polls that took longer than their device's interval.", "short",
                         q(f"sum(increase(schoolops_snmp_overruns_total{{{J}}}{RATE}))", "overruns"),
                         bars=True, minimum=0, steps=[(None, GREEN), (1, ORANGE)]), w=6)
    board.add(line_panel("SNMP polls by result", "Polls per second, by result.", "ops",
                         q(f"sum by (result) (rate(schoolops_snmp_polls_total{{{J}}}{RATE}))", "{{result}}"),
                         stacked=True, minimum=0), w=6)
    board.add(line_panel("SNMP traps by outcome", "Traps received per second, by outcome (unknown senders are "
                         "counted and ignored).", "ops",
                         q(f"sum by (outcome) (rate(schoolops_snmp_traps_total{{{J}}}{RATE}))", "{{outcome}}"),
                         stacked=True, minimum=0), w=6)

    board.row("Agents' spools")
    board.add(line_panel("Spool replays", "Reports delivered after waiting in an agent's spool (the collector "
                         "was unreachable).", "short",
                         q(f"sum by (asset) (increase(schoolops_agent_spool_replayed_total{{{J}}}{RATE}))",
                           "{{asset}}"),
                         bars=True, minimum=0), w=8)
    board.add(line_panel("Reports waiting", "Reports waiting in each agent's spool.", "short",
                         q(f"schoolops_agent_spool_pending_reports{{{J}}}", "{{asset}}"), minimum=0), w=8)
    board.add(line_panel("Reports dropped by spools", "Reports an agent dropped at a spool bound (size or age).",
                         "short",
                         q(f"sum by (asset) (increase(schoolops_agent_spool_dropped_total{{{J}}}{RATE}))", "{{asset}}"),
                         bars=True, minimum=0, steps=[(None, GREEN), (1, RED)]), w=8)

    board.row("Collector process")
    board.add(line_panel("CPU", "CPU used by the collector process (1 = one core).", "percentunit",
                         q(f"rate(process_cpu_seconds_total{{{J}}}{RATE})", "{{instance}}"), minimum=0), w=8)
    board.add(line_panel("Memory", "Resident memory of the collector process.", "bytes",
                         q(f"process_resident_memory_bytes{{{J}}}", "{{instance}}"), minimum=0), w=8)
    board.add(line_panel("Open files", "File descriptors the collector process holds, and its limit.", "short",
                         q(f"process_open_fds{{{J}}}", "open"), q(f"process_max_fds{{{J}}}", "limit"),
                         minimum=0), w=8)
    return board
