"""3. SNMP: varbinds per second of the poller vs Net-SNMP's snmpbulkwalk, and cycles over snmpsim fleets.

Throughput: Net-SNMP's snmpd runs in a network namespace of the harness's own holding ``N`` veth pairs
(a switch with 2N+1 ports, real moving counters). Ours: the poller's full poll of that device (system
group, ifTable and ifXTable columns, HOST-RESOURCES and ENTITY-SENSOR), one poll after the other.
Anchor: ``snmpbulkwalk`` of ifTable and of ifXTable. Both use 25 repetitions per request (the
poller's default), run on the client core against snmpd on the server core, and are counted by the
same meter: snmpd's own snmpInTotalReqVars (varbinds it served). Runs alternate the two. The note
gives each side's CPU per varbind, and how much of ours is spent decoding responses. (Through
pysnmp 7 the poller spent 84 of 107 µs per varbind in pyasn1's generic BER decoder and reached 0.10
of snmpbulkwalk; v2c now goes through the poller's own codec, collector.network.snmp_wire.)

Fleets: in a network namespace of its own, one snmpsim process (community = device, one port, on
the client core) simulates ``D`` access switches of 8 ports; one
:class:`~collector.network.snmp_poller.SnmpPoller` (default concurrency 64, timeout 2 s, 1 retry)
polls them all, cycle after cycle as it does every interval. The figure is the steady state (the
cycles after the first; the first, which also warms the simulator's caches, is in the notes). Lost replies: polls that did not come back ``ok`` plus UDP datagrams the namespace's kernel
dropped during the cycle.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

from bench.core import (
    Row,
    Sizes,
    Stats,
    Workdir,
    paired_ratios,
    pinned,
    python_module,
    run,
    which,
)
from bench.peers import (
    in_namespace,
    namespace,
    snmpsim_binary,
    start_snmpd,
    start_snmpsim,
)
from bench.profiling import Profiler

NAME = "snmp"
IF_TABLE, IFX_TABLE = "1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"
REPETITIONS = 25
CONCURRENCY = 64  # the collector's default network.snmp_concurrency
COUNTER = "1.3.6.1.2.1.11.13.0"  # snmpInTotalReqVars


def served(namespace: str | None, port: int, community: str) -> int:
    out = run(in_namespace(namespace, ["snmpget", "-v2c", "-c", community, "-m", "", "-On", "-Oqv", "-t", "2",
                                       f"127.0.0.1:{port}", COUNTER]), timeout=30).stdout
    return int(out.split()[-1])


def children_cpu() -> float:
    """CPU seconds of this process's finished children (what ``run`` started and waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def anchor_rate(namespace: str | None, port: int, community: str) -> tuple[float, int, float]:
    """(varbinds per second, varbinds, CPU seconds) of snmpbulkwalk over ifTable then ifXTable."""
    before = served(namespace, port, community)
    started, cpu = time.perf_counter(), children_cpu()
    for table in (IF_TABLE, IFX_TABLE):
        run(in_namespace(namespace, pinned(["snmpbulkwalk", "-v2c", "-c", community, "-m", "", "-On", "-Oq",
                                            f"-Cr{REPETITIONS}", f"127.0.0.1:{port}", table], "client")),
            timeout=120, env={**os.environ, "MIBS": ""})
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    varbinds = served(namespace, port, community) - before - 1
    return varbinds / seconds, varbinds, cpu


def ours_rate(namespace: str | None, port: int, community: str, polls: int) -> tuple[float, dict[str, float]]:
    out = run(in_namespace(namespace, pinned(python_module("bench.snmp_client", "poll", "127.0.0.1", str(port),
                                                           community, str(polls)), "client")),
              timeout=600, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["varbinds"] / result["seconds"], result


def throughput(sizes: Sizes, work: Path) -> Row:
    row = Row("3", "SNMP: varbinds per second, one device polled after the other", "varbinds/s",
              anchor_name=f"snmpbulkwalk (Net-SNMP), -Cr{REPETITIONS}", goal="≥ 1/3 of snmpbulkwalk")
    if which("snmpd") is None or which("snmpbulkwalk") is None:
        row.note = "anchor missing: snmpd / snmpbulkwalk are not installed (apt: snmpd snmp)"
        return row
    with namespace(sizes.snmp_veth_pairs) as netns:
        snmpd = start_snmpd(work, netns)
        try:
            ours, anchor, interfaces = [], [], 0
            ours_cpu, ours_decoding, anchor_cpu = [], [], []  # µs per varbind
            anchor_rate(netns, snmpd.port, snmpd.community)  # warm-up: snmpd's interface cache
            for n in range(sizes.runs):
                for who in (("anchor", "ours") if n % 2 == 0 else ("ours", "anchor")):
                    if who == "anchor":
                        rate, varbinds, cpu = anchor_rate(netns, snmpd.port, snmpd.community)
                        anchor.append(rate)
                        anchor_cpu.append(1e6 * cpu / varbinds)
                    else:
                        rate, result = ours_rate(netns, snmpd.port, snmpd.community, sizes.snmp_polls)
                        ours.append(rate)
                        interfaces = int(result["interfaces"])
                        ours_cpu.append(1e6 * result["cpu_seconds"] / result["varbinds"])
                        ours_decoding.append(1e6 * result["decode_seconds"] / result["varbinds"])
        finally:
            snmpd.stop()
    row.ours, row.anchor, row.ratio = Stats.of(ours), Stats.of(anchor), paired_ratios(ours, anchor)
    row.judge(lambda r: r >= 1 / 3)
    where = f"snmpd with {interfaces} interfaces in its own namespace" if netns else \
        f"snmpd on this host's loopback ({interfaces} interfaces: network namespaces not permitted)"
    row.note = f"{where}; ours: {sizes.snmp_polls} full polls per run"
    if ours_cpu and anchor_cpu:
        row.note += (f"; client CPU per varbind (median): ours {Stats(tuple(ours_cpu)).median:.0f} µs, of it "
                     f"{Stats(tuple(ours_decoding)).median:.1f} µs decoding responses (snmp_wire), snmpbulkwalk {Stats(tuple(anchor_cpu)).median:.1f} µs")
    return row


def fleets(sizes: Sizes, work: Path, profiler: Profiler) -> list[Row]:
    rows = [Row("3", f"SNMP: one poll cycle over {n:,} simulated switches (steady state)", "s",
                goal="≤ 60 s, no reply lost") for n in sizes.fleets]
    if snmpsim_binary() is None or which("snmpget") is None:
        for row in rows:
            row.note = "not measured: snmpsim (pip) or snmpget (apt: snmp) is not installed"
        return rows
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with namespace() as netns:  # its own loopback: the UDP drop counters are this figure's alone
        for devices, row in zip(sizes.fleets, rows, strict=True):
            sim = start_snmpsim(devices, work / f"snmpsim-{devices}.log", netns)
            try:
                argv = in_namespace(netns, pinned(python_module(
                    "bench.snmp_client", "fleet", "127.0.0.1", str(sim.port), str(devices), str(CONCURRENCY),
                    str(1 + sizes.fleet_runs)), "server"))
                cycles = json.loads(run(argv, timeout=1800, env=env).stdout.strip().splitlines()[-1])
            finally:
                sim.stop()
            lost = [sum(n for kind, n in c["results"].items() if kind != "ok") + c["udp_dropped"] for c in cycles]
            first, steady = cycles[0], cycles[1:]
            row.ours = Stats.of([c["seconds"] for c in steady])
            row.met = row.ours is not None and row.ours.median <= 60 and max(lost[1:]) == 0
            row.note = (f"replies lost per cycle (failed polls + UDP drops): {', '.join(map(str, lost[1:]))}; the "
                        f"first cycle took {first['seconds']:.1f} s and lost "
                        f"{lost[0]}; {steady[-1]['interfaces']:,} interfaces read per cycle"
                        + ("" if netns else "; UDP drops counted host-wide (no namespace)"))
    return rows


def measure(sizes: Sizes, work: Workdir, profiler: Profiler) -> list[Row]:
    directory = work.sub(NAME)
    return [throughput(sizes, directory), *fleets(sizes, directory, profiler)]
