"""A fleet of 50 simulated switches (snmpsim, one port, community = data file name) polled in one
cycle by SnmpPoller: every device answers, counters move at known rates, and a Counter32 that
wraps between two polls gives the true rate, not a spike.

snmpsim runs unprivileged from the start (setpriv --reuid=nobody), as PEERS.md says it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.network.config import SnmpConfig
from collector.network.snmp import Credentials, PollResult
from collector.network.snmp_poller import SnmpPoller, SnmpTarget
from schoolops.units import Seconds
from tests.support import free_udp_port

pytestmark = pytest.mark.peers

DEVICES = 50
WRAP_DEVICE = 7  # its ifInOctets.1 is a Counter32 (no ifXTable counters) that wraps at WRAP_AT
WRAP_RATE = 20_000_000  # bytes/s, 160 Mbit/s
WRAP_AFTER = 8.0  # seconds after the data files are written
RESOURCES_DEVICE = 3  # also has HOST-RESOURCES CPU and disk, and an ENTITY-SENSOR temperature
RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")


def in_rate(i: int) -> int:
    return 100_000 * (i + 1)  # bytes/s on interface 1 of device i


def out_rate(i: int) -> int:
    return 50_000 * (i + 1)


def snmprec(i: int, wrap_at: float) -> str:
    sys_ = "1.3.6.1.2.1.1"
    if_, ifx = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
    rows = [
        (f"{sys_}.1.0", "4", f"Simulated access switch {i}"),
        (f"{sys_}.2.0", "6", "1.3.6.1.4.1.9.1.1208"),
        (f"{sys_}.3.0", "67:numeric", "rate=100,initial=360000"),  # TimeTicks: one hour up, moving
        (f"{sys_}.5.0", "4", f"sw-{i:02d}"),
    ]
    for port in (1, 2):
        rows += [
            (f"{if_}.1.{port}", "2", str(port)),
            (f"{if_}.2.{port}", "4", f"GigabitEthernet0/{port}"),
            (f"{if_}.3.{port}", "2", "6"),
            (f"{if_}.5.{port}", "66", "1000000000"),
            (f"{if_}.7.{port}", "2", "1"),
            (f"{if_}.8.{port}", "2", "1" if port == 1 else "2"),
            (f"{if_}.13.{port}", "65", "0"), (f"{if_}.14.{port}", "65", "3"),
            (f"{if_}.19.{port}", "65", "0"), (f"{if_}.20.{port}", "65", "0"),
            (f"{ifx}.1.{port}", "4", f"Gi0/{port}"),
            (f"{ifx}.15.{port}", "66", "1000"),
            (f"{ifx}.18.{port}", "4", "uplink" if port == 1 else ""),
        ]
        if i == WRAP_DEVICE:  # an old switch: 32-bit counters only, ifInOctets.1 wraps at wrap_at
            initial = 2**32 - WRAP_RATE * wrap_at if port == 1 else 0
            rate = WRAP_RATE if port == 1 else 1000
            rows += [(f"{if_}.10.{port}", "65:numeric", f"rate={rate},atime=1,initial={initial:.0f},wrap=1"),
                     (f"{if_}.16.{port}", "65:numeric", f"rate={out_rate(i)},wrap=1")]
            continue
        rin, rout = (in_rate(i), out_rate(i)) if port == 1 else (0, 0)
        rows += [(f"{if_}.10.{port}", "65:numeric", f"rate={rin},wrap=1"),
                 (f"{if_}.16.{port}", "65:numeric", f"rate={rout},wrap=1"),
                 (f"{ifx}.6.{port}", "70:numeric", f"rate={rin},initial=5000000000000"),
                 (f"{ifx}.10.{port}", "70:numeric", f"rate={rout},initial=7000000000000")]
    if i == RESOURCES_DEVICE:
        st, cpu, sensor, name = "1.3.6.1.2.1.25.2.3.1", "1.3.6.1.2.1.25.3.3.1.2", "1.3.6.1.2.1.99.1.1.1", \
            "1.3.6.1.2.1.47.1.1.1.1.7"
        rows += [
            (f"{st}.2.1", "6", "1.3.6.1.2.1.25.2.1.2"), (f"{st}.2.31", "6", "1.3.6.1.2.1.25.2.1.4"),
            (f"{st}.3.1", "4", "Physical memory"), (f"{st}.3.31", "4", "flash:"),
            (f"{st}.4.1", "2", "1024"), (f"{st}.4.31", "2", "4096"),
            (f"{st}.5.1", "2", "262144"), (f"{st}.5.31", "2", "65536"),
            (f"{st}.6.1", "2", "131072"), (f"{st}.6.31", "2", "16384"),
            (f"{cpu}.196608", "2", "10"), (f"{cpu}.196609", "2", "30"),
            (f"{name}.1001", "4", "CPU temperature"), (f"{name}.1002", "4", "Fan 1"),
            (f"{sensor}.1.1001", "2", "8"), (f"{sensor}.1.1002", "2", "10"),  # celsius(8), rpm(10)
            (f"{sensor}.2.1001", "2", "9"), (f"{sensor}.2.1002", "2", "9"),
            (f"{sensor}.3.1001", "2", "1"), (f"{sensor}.3.1002", "2", "0"),
            (f"{sensor}.4.1001", "2", "423"), (f"{sensor}.4.1002", "2", "5200"),
            (f"{sensor}.5.1001", "2", "1"), (f"{sensor}.5.1002", "2", "1"),
        ]
    rows.sort(key=lambda row: tuple(int(x) for x in row[0].split(".")))
    return "".join(f"{oid}|{tag}|{value}\n" for oid, tag, value in rows)


@dataclass
class Simulator:
    port: int
    wrap_at: float
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    # nobody must read the data and write the index cache: pytest's tmp dirs are private to root
    root = Path(tempfile.mkdtemp(prefix="schoolops-snmpsim-"))
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    wrap_at = time.time() + WRAP_AFTER
    for i in range(DEVICES):
        (data / f"sw{i:02d}.snmprec").write_text(snmprec(i, wrap_at))
    root.chmod(0o755)
    data.chmod(0o755)
    shutil.chown(cache, "nobody", "nogroup")
    port = free_udp_port()
    log = tmp_path_factory.mktemp("snmpsim") / "snmpsim.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(RESPONDER),
             f"--data-dir={data}", f"--cache-dir={cache}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
             "--logging-method=stderr"], stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        deadline = time.monotonic() + 20
        while "Listening at UDP/IPv4 endpoint" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"snmpsim did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield Simulator(port, wrap_at, process)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)


def targets(port: int) -> list[SnmpTarget]:
    config = SnmpConfig(version="2c", port=port, community_secret="snmp.fleet", timeout=Seconds(2), retries=1,
                        interval=Seconds(60))
    return [SnmpTarget(asset=f"sw-{i:02d}", address="127.0.0.1", config=config,
                       credentials=Credentials(community=f"sw{i:02d}")) for i in range(DEVICES)]


@pytest.fixture
async def poller() -> AsyncIterator[tuple[SnmpPoller, list[tuple[str, PollResult, float]]]]:
    delivered: list[tuple[str, PollResult, float]] = []

    async def on_result(asset: str, result: PollResult, now: float) -> None:
        delivered.append((asset, result, now))

    fleet = SnmpPoller(on_result=on_result)
    yield fleet, delivered
    fleet.close()


async def test_fifty_devices_in_one_cycle_with_rates_across_a_counter32_wrap(
        snmpsim: Simulator, poller: tuple[SnmpPoller, list[tuple[str, PollResult, float]]]) -> None:
    fleet, delivered = poller
    fleet.set_targets(targets(snmpsim.port))

    first = await fleet.poll_once()
    first_cycle = fleet.last_cycle_seconds
    assert first_cycle is not None
    print(f"\nfirst cycle: {DEVICES} devices in {first_cycle:.2f}s")
    assert sorted(first) == [f"sw-{i:02d}" for i in range(DEVICES)]
    unreachable = {a: r.device.error for a, r in first.items() if not r.device.reachable}
    assert not unreachable
    assert all(first[f"sw-{i:02d}"].device.sys_name == f"sw-{i:02d}" for i in range(DEVICES))
    assert len(delivered) == DEVICES and fleet.polls_total["ok"] == DEVICES and fleet.cycles_total == 1

    wrapping = first[f"sw-{WRAP_DEVICE:02d}"].interfaces[0]
    assert wrapping.in_octets > 2**32 - WRAP_RATE * (WRAP_AFTER + 1), \
        "the first poll came after the wrap (machine too slow?): raise WRAP_AFTER"  # near the top, not wrapped yet

    time.sleep(max(0.0, snmpsim.wrap_at + 0.5 - time.time()))
    second = await fleet.poll_once()
    print(f"second cycle: {DEVICES} devices in {fleet.last_cycle_seconds:.2f}s")
    assert all(r.device.reachable and not r.device.rebooted for r in second.values())

    wrapped = second[f"sw-{WRAP_DEVICE:02d}"].interfaces[0]
    assert wrapped.in_octets < wrapping.in_octets  # the Counter32 did wrap between the polls
    assert wrapped.in_bps == pytest.approx(WRAP_RATE * 8, rel=0.1)  # the true rate, no 2^32 spike
    assert wrapped.utilisation == pytest.approx(WRAP_RATE * 8 / 1e9, rel=0.1)

    for i in range(DEVICES):
        if i == WRAP_DEVICE:
            continue
        gi1, gi2 = second[f"sw-{i:02d}"].interfaces
        assert (gi1.name, gi1.alias, gi1.speed_bps, gi2.oper_up) == ("Gi0/1", "uplink", 1_000_000_000, False)
        assert gi1.in_octets > 5_000_000_000_000  # from the 64-bit ifHCInOctets
        assert gi1.in_bps == pytest.approx(in_rate(i) * 8, rel=0.1), f"sw-{i:02d}"
        assert gi1.out_bps == pytest.approx(out_rate(i) * 8, rel=0.1), f"sw-{i:02d}"
        assert gi1.errors_per_second == 0.0 and gi2.in_bps == 0.0

    resources = second[f"sw-{RESOURCES_DEVICE:02d}"]
    assert resources.cpu_percent == 20.0
    assert [(fs.mountpoint, fs.size, fs.free) for fs in resources.storage] == [("flash:", 65536 * 4096, 49152 * 4096)]
    assert [(t.sensor, t.celsius) for t in resources.temperatures] == [("CPU temperature", pytest.approx(42.3))]
    assert fleet.overruns_total == 0 and fleet.polls_total["ok"] == 2 * DEVICES


async def test_a_dead_device_is_reported_and_does_not_hold_up_the_others(
        snmpsim: Simulator, poller: tuple[SnmpPoller, list[tuple[str, PollResult, float]]]) -> None:
    fleet, delivered = poller
    dead_config = SnmpConfig(version="2c", port=free_udp_port(), community_secret="snmp.fleet",
                             timeout=Seconds(0.5), retries=1, interval=Seconds(60))
    dead = SnmpTarget(asset="dead-switch", address="127.0.0.1", config=dead_config,
                      credentials=Credentials(community="public"))
    results = await fleet.poll_once([*targets(snmpsim.port)[:10], dead])

    assert results["dead-switch"].device.reachable is False
    assert "no answer" in (results["dead-switch"].device.error or "")
    assert all(results[f"sw-{i:02d}"].device.reachable for i in range(10))
    assert fleet.polls_total["timeout"] == 1 and fleet.polls_total["ok"] == 10
    # the live devices' results were delivered before the dead one gave up
    assert [a for a, _, _ in delivered][-1] == "dead-switch"


async def test_run_keeps_each_cadence_and_abandons_a_poll_longer_than_its_interval(
        snmpsim: Simulator, poller: tuple[SnmpPoller, list[tuple[str, PollResult, float]]]) -> None:
    fleet, delivered = poller
    # live devices get 2 s: on a loaded 2-core machine a healthy poll can take more than 1 s
    fast = SnmpConfig(version="2c", port=snmpsim.port, community_secret="snmp.fleet", timeout=Seconds(2), retries=0,
                      interval=Seconds(2))
    stuck = SnmpConfig(version="2c", port=free_udp_port(), community_secret="snmp.fleet", timeout=Seconds(5),
                       retries=0, interval=Seconds(1))  # would wait 5 s for an answer: longer than its interval
    live = [SnmpTarget(asset=f"sw-{i:02d}", address="127.0.0.1", config=fast,
                       credentials=Credentials(community=f"sw{i:02d}")) for i in range(5)]
    fleet.set_targets([*live, SnmpTarget(asset="stuck", address="127.0.0.1", config=stuck,
                                         credentials=Credentials(community="public"))])

    def count(asset: str) -> int:
        return sum(1 for a, _, _ in delivered if a == asset)

    runner = asyncio.create_task(fleet.run())
    try:
        async with asyncio.timeout(20):
            while min(count(t.asset) for t in live) < 2 or count("stuck") < 2:
                await asyncio.sleep(0.1)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    by_asset: dict[str, list[PollResult]] = {}
    for asset, result, _ in delivered:
        by_asset.setdefault(asset, []).append(result)
    assert all(r.device.reachable for t in live for r in by_asset[t.asset])
    assert all(r.interfaces[0].in_bps is not None for t in live for r in by_asset[t.asset][1:])  # state carried over
    assert {r.result for r in by_asset["stuck"]} == {"deadline_exceeded"}
    assert "longer than its interval" in (by_asset["stuck"][0].device.error or "")
    assert fleet.overruns_total >= 2 and fleet.polls_total["deadline_exceeded"] >= 2
    assert fleet.cycles_total >= 3
