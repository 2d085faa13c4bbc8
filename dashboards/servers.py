"""Servers: each agent's CPU, memory, filesystems, disks, network and watched processes, by site and asset."""

from __future__ import annotations

from dashboards.kit import (
    GREEN,
    ORANGE,
    RED,
    Board,
    bar_panel,
    label_variable,
    line_panel,
    now,
    q,
    rows,
    stat_panel,
    table_panel,
    value_text,
)

UID = "schoolops-servers"
S = 'site=~"$site", asset=~"$asset"'
RATE = "[$__rate_interval]"
UP_DOWN = value_text({"1": ("reporting", GREEN), "0": ("silent", RED)})


def build() -> Board:
    board = Board(UID, "schoolops: servers",
                  "What each server's agent reports: CPU, memory, filesystems, disks, network, watched processes, "
                  "ports, files and checks. 服務器。", variables=[
                      label_variable("site", "Site", "schoolops_asset_info"),
                      label_variable("asset", "Server", 'node_boot_time_seconds{site=~"$site"}',
                                     description="Assets with an agent (they report a boot time)."),
                  ])
    board.row("Overview")
    board.add(stat_panel("Reporting", "Whether each server's agent reports within its silence window.", "none",
                         now(f"schoolops_asset_up{{{S}}}", "{{asset}}"), mappings=UP_DOWN,
                         steps=[(None, RED), (1, GREEN)]), w=8, h=4)
    board.add(stat_panel("Uptime", "Time since each server booted.", "dtdurations",
                         now(f"time() - node_boot_time_seconds{{{S}}}", "{{asset}}")), w=8, h=4)
    board.add(stat_panel("Last report", "Seconds since each server's last applied report.", "s",
                         now(f"schoolops_asset_last_report_age_seconds{{{S}}}", "{{asset}}"),
                         steps=[(None, GREEN), (60, ORANGE), (300, RED)]), w=8, h=4)

    board.row("CPU and memory")
    board.add(line_panel("CPU busy", "Share of CPU time not idle, all cores.", "percentunit",
                         q(f'1 - avg by (asset) (rate(node_cpu_seconds_total{{{S}, mode="idle"}}{RATE}))', "{{asset}}"),
                         minimum=0, maximum=1), w=12)
    board.add(line_panel("CPU by mode", "CPU time by mode (user, system, iowait, …) as a share of all cores.",
                         "percentunit",
                         q(f'sum by (asset, mode) (rate(node_cpu_seconds_total{{{S}, mode!="idle"}}{RATE})) '
                           f'/ on (asset) group_left () count by (asset) (node_cpu_seconds_total{{{S}, mode="idle"}})',
                           "{{asset}} {{mode}}"), stacked=True, minimum=0), w=12)
    board.add(line_panel("Memory used", "Share of memory not available to new programs.", "percentunit",
                         q(f"1 - node_memory_available_bytes{{{S}}} / node_memory_total_bytes{{{S}}}", "{{asset}}"),
                         minimum=0, maximum=1, steps=[(None, GREEN), (0.9, ORANGE), (0.97, RED)]), w=8)
    board.add(line_panel("Memory", "Total, available and cached memory.", "bytes",
                         q(f"node_memory_total_bytes{{{S}}}", "{{asset}} total"),
                         q(f"node_memory_available_bytes{{{S}}}", "{{asset}} available"),
                         q(f"node_memory_cached_bytes{{{S}}}", "{{asset}} cached"),
                         q(f"node_memory_swap_total_bytes{{{S}}} - node_memory_swap_free_bytes{{{S}}}",
                           "{{asset}} swap used"), minimum=0), w=8)
    board.add(line_panel("Load", "Load averages (runnable and waiting tasks).", "short",
                         q(f"node_load1{{{S}}}", "{{asset}} 1m"), q(f"node_load5{{{S}}}", "{{asset}} 5m"),
                         q(f"node_load15{{{S}}}", "{{asset}} 15m"), minimum=0), w=8)

    board.row("Filesystems and disks")
    board.add(bar_panel("Filesystem used", "Share of each filesystem used (space available to non-root users).",
                        "percentunit",
                        now(f"1 - node_filesystem_avail_bytes{{{S}}} / (node_filesystem_size_bytes{{{S}}} > 0)",
                            "{{asset}} {{mountpoint}}"),
                        minimum=0, maximum=1, steps=[(None, GREEN), (0.85, ORANGE), (0.95, RED)]), w=10, h=8)
    board.add(line_panel("Filesystem free", "Space available to non-root users.", "bytes",
                         q(f"node_filesystem_avail_bytes{{{S}}}", "{{asset}} {{mountpoint}}"), minimum=0), w=10)
    board.add(stat_panel("Read-only filesystems", "Filesystems mounted read-only (often a failing disk).", "none",
                         now(f"count(node_filesystem_readonly{{{S}}} == 1) or vector(0)"),
                         steps=[(None, GREEN), (1, RED)]), w=4, h=8)
    board.add(line_panel("Inodes used", "Share of each filesystem's file nodes in use.", "percentunit",
                         q(f"1 - node_filesystem_files_free{{{S}}} / (node_filesystem_files{{{S}}} > 0)",
                           "{{asset}} {{mountpoint}}"), minimum=0, maximum=1), w=8)
    board.add(line_panel("Disk throughput", "Bytes read and written per second.", "Bps",
                         q(f"rate(node_disk_read_bytes_total{{{S}}}{RATE})", "{{asset}} {{device}} read"),
                         q(f"rate(node_disk_written_bytes_total{{{S}}}{RATE})", "{{asset}} {{device}} written"),
                         minimum=0), w=8)
    board.add(line_panel("Disk busy", "Share of time each disk was doing I/O.", "percentunit",
                         q(f"rate(node_disk_io_time_seconds_total{{{S}}}{RATE})", "{{asset}} {{device}}"),
                         minimum=0, maximum=1), w=8)

    board.row("Network")
    board.add(line_panel("Network traffic", "Bytes received and sent per second, by interface.", "Bps",
                         q(f"rate(node_network_receive_bytes_total{{{S}}}{RATE})", "{{asset}} {{device}} in"),
                         q(f"rate(node_network_transmit_bytes_total{{{S}}}{RATE})", "{{asset}} {{device}} out"),
                         minimum=0), w=12)
    board.add(line_panel("Network errors and drops", "Packets with errors or dropped, per second.", "pps",
                         q(f"rate(node_network_receive_errs_total{{{S}}}{RATE}) "
                           f"+ rate(node_network_transmit_errs_total{{{S}}}{RATE})", "{{asset}} {{device}} errors"),
                         q(f"rate(node_network_receive_drop_total{{{S}}}{RATE}) "
                           f"+ rate(node_network_transmit_drop_total{{{S}}}{RATE})", "{{asset}} {{device}} drops"),
                         minimum=0), w=12)

    board.row("Processes and services")
    board.add(table_panel("Watched processes", "Processes the agent watches and how many are running "
                          "(0: not running).", "none", rows(f"schoolops_processes{{{S}}}"),
                          columns={"asset": "Server", "process": "Process", "Value": "Running"},
                          steps=[(None, RED), (1, GREEN)]), w=8)
    board.add(line_panel("Process CPU", "CPU used by the watched processes (1 = one core).", "percentunit",
                         q(f"rate(schoolops_process_cpu_seconds_total{{{S}}}{RATE})", "{{asset}} {{process}}"),
                         minimum=0), w=8)
    board.add(line_panel("Process memory", "Resident memory of the watched processes.", "bytes",
                         q(f"schoolops_process_resident_memory_bytes{{{S}}}", "{{asset}} {{process}}"), minimum=0), w=8)
    board.add(table_panel("Ports", "TCP ports expected to listen.", "none", rows(f"schoolops_port_listening{{{S}}}"),
                          columns={"asset": "Server", "port": "Port", "name": "Name", "Value": "State"},
                          mappings=value_text({"1": ("listening", GREEN), "0": ("closed", RED)})), w=8)
    board.add(table_panel("Backups and files", "Age of the newest file of each freshness check (e.g. the nightly "
                          "backup). 備份新鮮度。", "dtdurations", rows(f"schoolops_file_newest_age_seconds{{{S}}}"),
                          columns={"asset": "Server", "check": "Check", "Value": "Newest file age"}), w=8)
    board.add(table_panel("Checks", "Plugin checks (Nagios-compatible) and their last status.", "none",
                          rows(f"schoolops_check_status{{{S}}}"),
                          columns={"asset": "Server", "check": "Check", "Value": "Status"},
                          mappings=value_text({"0": ("OK", GREEN), "1": ("WARNING", ORANGE), "2": ("CRITICAL", RED),
                                               "3": ("UNKNOWN", "purple")})), w=8)
    board.add(line_panel("Log matches", "Log lines that matched a watch's patterns (e.g. failed logins).", "short",
                         q(f"increase(schoolops_log_matches_total{{{S}}}{RATE})", "{{asset}} {{check}}"),
                         bars=True, minimum=0), w=8)
    board.add(line_panel("Temperatures", "Hardware sensors.", "celsius",
                         q(f"node_hwmon_temp_celsius{{{S}}}", "{{asset}} {{chip}} {{sensor}}")), w=8)
    board.add(line_panel("Probe errors", "Agent probes that failed in the latest report.", "short",
                         q(f"schoolops_agent_probe_errors{{{S}}}", "{{asset}}"), minimum=0), w=8)
    return board
