"""Network: devices up or down, interface traffic, utilisation and errors, top talkers, reboots, service probes."""

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

UID = "schoolops-network"
SITE = 'site=~"$site"'
D = 'site=~"$site", asset=~"$device"'
RATE = "[$__rate_interval]"


def build() -> Board:
    board = Board(UID, "schoolops: network",
                  "Switches, routers and access points polled over SNMP, their interfaces, and the active probes "
                  "of services. 網絡設備與服務。", variables=[
                      label_variable("site", "Site", "schoolops_asset_info"),
                      label_variable("device", "Device", 'schoolops_device_up{site=~"$site"}', label="asset",
                                     description="Network devices polled over SNMP."),
                  ])
    board.row("Devices")
    board.add(stat_panel("Devices up", "Devices that answered their last SNMP poll.", "none",
                         now(f"sum(schoolops_device_up{{{SITE}}})"), steps=[(None, GREEN)]), w=6, h=4)
    board.add(stat_panel("Devices down", "Devices that did not answer their last SNMP poll.", "none",
                         now(f"count(schoolops_device_up{{{SITE}}} == 0) or vector(0)"),
                         steps=[(None, GREEN), (1, RED)]), w=6, h=4)
    board.add(stat_panel("Uptime", "Time since each device (re)started (sysUpTime).", "dtdurations",
                         now(f"sys_up_time_seconds{{{D}}}", "{{asset}}")), w=12, h=4)
    board.add(table_panel("Device state", "Each device's last SNMP poll.", "none", rows(f"schoolops_device_up{{{D}}}"),
                          columns={"asset": "Device", "site": "Site", "role": "Role", "Value": "State"},
                          mappings=value_text({"1": ("up", GREEN), "0": ("down", RED)})), w=12, h=8)
    board.add(bar_panel("Reboots", "Times each device's uptime went back to zero in the shown time range (sysUpTime "
                        "also wraps after 497 days).", "none",
                        now(f"resets(sys_up_time_seconds{{{D}}}[$__range])", "{{asset}}"),
                        steps=[(None, GREEN), (1, ORANGE)]), w=12, h=8)
    board.add(line_panel("Poll duration", "How long each device's last SNMP poll took.", "s",
                         q(f"schoolops_device_poll_duration_seconds{{{D}}}", "{{asset}}"), minimum=0), w=24, h=6)

    board.row("Interfaces")
    board.add(line_panel("Traffic in", "Bits received per second, by interface.", "bps",
                         q(f"rate(if_hc_in_octets_total{{{D}}}{RATE}) * 8", "{{asset}} {{if_name}}"), minimum=0), w=12)
    board.add(line_panel("Traffic out", "Bits sent per second, by interface.", "bps",
                         q(f"rate(if_hc_out_octets_total{{{D}}}{RATE}) * 8", "{{asset}} {{if_name}}"), minimum=0), w=12)
    board.add(line_panel("Utilisation", "The busier direction's traffic as a share of the interface's speed.",
                         "percentunit", q(f"schoolops_interface_utilisation_ratio{{{D}}}", "{{asset}} {{if_name}}"),
                         minimum=0, maximum=1, steps=[(None, GREEN), (0.7, ORANGE), (0.9, RED)]), w=12)
    board.add(bar_panel("Top talkers", "The ten busiest interfaces now (in + out).", "bps",
                        now(f"topk(10, sum by (asset, if_name) (rate(if_hc_in_octets_total{{{SITE}}}{RATE}) "
                            f"+ rate(if_hc_out_octets_total{{{SITE}}}{RATE})) * 8)", "{{asset}} {{if_name}}"),
                        minimum=0), w=12)
    board.add(line_panel("Errors", "Inbound and outbound errors per second.", "pps",
                         q(f"rate(if_in_errors_total{{{D}}}{RATE})", "{{asset}} {{if_name}} in"),
                         q(f"rate(if_out_errors_total{{{D}}}{RATE})", "{{asset}} {{if_name}} out"), minimum=0), w=12)
    board.add(line_panel("Discards", "Inbound and outbound discards per second (full queues).", "pps",
                         q(f"rate(if_in_discards_total{{{D}}}{RATE})", "{{asset}} {{if_name}} in"),
                         q(f"rate(if_out_discards_total{{{D}}}{RATE})", "{{asset}} {{if_name}} out"), minimum=0), w=12)
    board.add(table_panel("Interface state", "Operational state of every interface (ifOperStatus).", "none",
                          rows(f"if_oper_status{{{D}}}"),
                          columns={"asset": "Device", "if_name": "Interface", "if_alias": "Description",
                                   "Value": "State"},
                          mappings=value_text({"1": ("up", GREEN), "2": ("down", RED)})), w=24, h=8)

    board.row("Services")
    board.add(table_panel("Service probes", "Each active probe's last result (HTTP, TCP, TLS, DNS, ICMP).", "none",
                          rows(f"schoolops_probe_up{{{SITE}}}"),
                          columns={"asset": "Service", "probe": "Probe", "kind": "Kind", "Value": "State"},
                          mappings=value_text({"1": ("up", GREEN), "0": ("failing", RED)})), w=8)
    board.add(line_panel("Response time", "How long each probe took to answer.", "s",
                         q(f"schoolops_probe_duration_seconds{{{SITE}}}", "{{asset}} {{probe}}"), minimum=0), w=8)
    board.add(bar_panel("Certificates: time left", "Time until each probed TLS certificate expires. 證書到期。", "s",
                        now(f"schoolops_probe_tls_expiry_seconds{{{SITE}}}", "{{asset}} {{probe}}"),
                        steps=[(None, RED), (3 * 86400, ORANGE), (14 * 86400, GREEN)]), w=8)
    board.add(line_panel("HTTP status", "The status code each HTTP probe got.", "none",
                         q(f"schoolops_probe_http_status{{{SITE}}}", "{{asset}} {{probe}}")), w=24, h=6)
    return board
