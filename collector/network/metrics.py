"""The network side's own health on /metrics: poll cycles and overruns, poll results, traps by outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collector.network.snmp import RESULTS
from collector.network.traps import STATS


class NetworkCollector:
    """A prometheus-client custom collector reading the live service (one ``collect()``)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        poller = self.service.poller
        cycle = GaugeMetricFamily("schoolops_snmp_cycle_duration_seconds", "How long the last SNMP poll cycle took.")
        cycle.add_metric([], poller.last_cycle_seconds or 0.0)
        yield cycle
        cycles = CounterMetricFamily("schoolops_snmp_cycles", "SNMP poll cycles run.")
        cycles.add_metric([], poller.cycles_total)
        yield cycles
        overruns = CounterMetricFamily("schoolops_snmp_overruns", "Polls that took longer than their device's interval.")
        overruns.add_metric([], poller.overruns_total)
        yield overruns
        polls = CounterMetricFamily("schoolops_snmp_polls", "SNMP polls by result.", labels=["result"])
        for result in RESULTS:
            polls.add_metric([result], poller.polls_total.get(result, 0))
        yield polls
        received = CounterMetricFamily("schoolops_snmp_traps", "SNMP traps received, by outcome.", labels=["outcome"])
        stats = self.service.receiver.stats if self.service.receiver is not None else {}
        for outcome in STATS:
            received.add_metric([outcome], stats.get(outcome, 0))
        yield received
