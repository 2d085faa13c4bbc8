"""A load generator for the ingest figure when wrk is not installed: asyncio and aiohttp.

    python -m bench.loadgen SPEC.json

SPEC: ``{"url", "seconds", "connections", "assets": [{"token", "prefix", "suffix"}]}``. Request ``n``
goes to asset ``n % len(assets)`` with sequence number ``n // len(assets) + 1`` (the same scheme as
the wrk script). Prints one JSON line: requests, seconds, and the count of each HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import aiohttp


async def load(spec: dict) -> dict:  # type: ignore[type-arg]
    assets = [(a["token"], a["prefix"].encode(), a["suffix"].encode()) for a in spec["assets"]]
    url, seconds = spec["url"], float(spec["seconds"])
    statuses: Counter[int] = Counter()
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            n = counter
            counter += 1
            token, prefix, suffix = assets[n % len(assets)]
            body = prefix + str(n // len(assets) + 1).encode() + suffix
            try:
                async with session.post(url, data=body, headers={"Authorization": f"Bearer {token}",
                                                                 "Content-Type": "application/json"}) as response:
                    await response.read()
                    statuses[response.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=int(spec["connections"]))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(int(spec["connections"]))))
    elapsed = time.perf_counter() - started
    return {"requests": sum(statuses.values()), "seconds": elapsed, "statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(load(spec))))


if __name__ == "__main__":
    main()
