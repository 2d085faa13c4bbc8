"""The SNMP figure's client side, in a process of its own (pinned to its core, inside the switch's namespace):

    python -m bench.snmp_client poll HOST PORT COMMUNITY POLLS
        the poller's full poll of one device, POLLS times one after the other; prints the seconds, the
        varbinds the device served meanwhile (its own snmpInTotalReqVars counter), this process's CPU
        seconds, and the seconds of it spent decoding responses (collector.network.snmp_wire).
    python -m bench.snmp_client fleet HOST PORT DEVICES CONCURRENCY CYCLES
        CYCLES cycles of one SnmpPoller over DEVICES simulated switches (community swNNNN each);
        prints each cycle's seconds, its polls by result, and the UDP datagrams the kernel dropped.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Self

from collector.network import snmp_wire
from collector.network.config import SnmpConfig
from collector.network.snmp import Credentials, get_values
from collector.network.snmp_poller import SnmpPoller, SnmpTarget
from schoolops.units import Seconds

SNMP_IN_TOTAL_REQ_VARS = "1.3.6.1.2.1.11.13.0"


def config(port: int) -> SnmpConfig:
    # the shipped defaults: 2 s timeout, 1 retry, 25 repetitions, 60 s interval
    return SnmpConfig(version="2c", port=port, community_secret="snmp.bench", interval=Seconds(60))


def udp_drops() -> int:
    """Datagrams this namespace's kernel dropped (receive buffer full, or bad), from /proc/net/snmp."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    fields = dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=True))
    return fields.get("InErrors", 0) + fields.get("RcvbufErrors", 0)


class DecoderClock:
    """Counts the seconds spent decoding v2c responses (``snmp_wire.decode_response``, looked up on
    the module for every datagram received)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._decode = snmp_wire.decode_response

    def __enter__(self) -> Self:
        def decode(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self._decode(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        snmp_wire.decode_response = decode  # type: ignore[assignment]
        return self

    def __exit__(self, *_exc: object) -> None:
        snmp_wire.decode_response = self._decode  # type: ignore[assignment]


async def poll(host: str, port: int, community: str, polls: int) -> dict[str, float]:
    poller = SnmpPoller(concurrency=1)
    target = SnmpTarget(asset="switch", address=host, config=config(port), credentials=Credentials(community=community))
    try:
        async def served() -> int:
            got = await get_values(poller.engine(), host, config(port), target.credentials, [SNMP_IN_TOTAL_REQ_VARS])
            return int(got[SNMP_IN_TOTAL_REQ_VARS] or 0)

        await poller.poll_once([target])  # warm-up: imports, the engine, the first request
        before = await served()
        started, cpu = time.perf_counter(), time.process_time()
        interfaces = 0
        with DecoderClock() as decoder:
            for _ in range(polls):
                result = (await poller.poll_once([target]))["switch"]
                if result.error is not None:
                    raise SystemExit(f"poll failed: {result.error}")
                interfaces = len(result.interfaces)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = await served()
        return {"seconds": seconds, "varbinds": after - before - 1, "interfaces": interfaces, "cpu_seconds": cpu,
                "decode_seconds": decoder.seconds}
    finally:
        poller.close()


async def fleet(host: str, port: int, devices: int, concurrency: int, cycles: int) -> list[dict[str, object]]:
    """``cycles`` cycles one after the other, as the poller runs them every interval: the first
    also sets up every device in the SNMP engine, the ones after are the steady state."""
    poller = SnmpPoller(concurrency=concurrency)
    targets = [SnmpTarget(asset=f"sw-{i:04d}", address=host, config=config(port),
                          credentials=Credentials(community=f"sw{i:04d}")) for i in range(devices)]
    out: list[dict[str, object]] = []
    try:
        for _ in range(cycles):
            drops = udp_drops()
            started = time.perf_counter()
            results = await poller.poll_once(targets)
            seconds = time.perf_counter() - started
            dropped = udp_drops() - drops
            by_result: dict[str, int] = {}
            for result in results.values():
                by_result[result.result] = by_result.get(result.result, 0) + 1
            out.append({"seconds": seconds, "results": by_result, "udp_dropped": dropped,
                        "interfaces": sum(len(r.interfaces) for r in results.values())})
        return out
    finally:
        poller.close()


def main() -> None:
    kind, host, port, *rest = sys.argv[1:]
    if kind == "poll":
        out = asyncio.run(poll(host, int(port), rest[0], int(rest[1])))
    else:
        out = asyncio.run(fleet(host, int(port), int(rest[0]), int(rest[1]), int(rest[2])))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
