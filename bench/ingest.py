"""2. Ingest: reports per second the collector applies end to end, on one core, vs a bare handler.

Ours: the real collector (authenticate, parse, validate, store the latest report, evaluate the shipped
rules) pinned to one core. Anchor: :mod:`bench.bare` (aiohttp + orjson, parse and 204) on the same
core. Both are loaded by the same client on the other core — wrk when installed, else
:mod:`bench.loadgen` — with the same bodies: a 4-core server's report, ``K`` assets round robin, a new
sequence number every request, a new stream every run. Runs alternate anchor and ours.

Ours counts only reports the collector *applied* (a report overtaken by a later one of its stream is
acknowledged as a duplicate and not evaluated; there are a handful at most). The note gives each
server's CPU per request, from /proc.

Where ours spends it (measured for issue 10 on the 2-core machine of the page, each part found by
running the collector with that part replaced by a no-op; µs of CPU per applied report, ± 10 %):
280 to 320 in all (the note gives this run's); the rules and incidents about 100 (evaluating the
21 shipped rules over the report's measurements is about 50 of it); the store about 55 (one group
transaction on SQLite's worker thread for the reports that arrive together, and the hand-offs to
it); without either, about 135 — aiohttp's own handling of the request (the bare handler's 60),
the token check, msgspec's decoding and validation of the 2.9 kB report, the fleet view's update,
the counters and the JSON answer. So even with storing and rule evaluation free the collector
would reach about 0.45 of the bare handler: 50 % is out of reach for the work each report must get
(validated, stored, its rules evaluated) in Python on aiohttp.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.core import Row, Sizes, Stats, Workdir, cpu_seconds, free_port, http_get, paired_ratios, pinned, python_module, \
    run, start, wait_until, which
from bench.peers import create_tokens, start_collector, stop_all
from bench.profiling import Profiler
from bench.reports import ReportTemplate, template
from tests.support import metric_value

NAME = "ingest"
PATH = "/api/v1/reports"


class Load:
    """Drives one server with the shared client; each call uses a new stream per asset."""

    def __init__(self, directory: Path, tokens: dict[str, str], sizes: Sizes) -> None:
        self.directory, self.tokens, self.sizes = directory, tokens, sizes
        self.wrk = which("wrk")
        self.count = 0

    @property
    def client(self) -> str:
        if self.wrk:
            return f"wrk (1 thread, {self.sizes.ingest_connections} connections)"
        return f"bench.loadgen (asyncio + aiohttp, {self.sizes.ingest_connections} connections)"

    def __call__(self, base_url: str, seconds: float) -> tuple[float, int]:
        """(requests per second, requests answered with anything but 2xx)."""
        self.count += 1
        templates = [template(asset, token) for asset, token in self.tokens.items()]
        if self.wrk:
            return self._wrk(base_url, templates, seconds)
        return self._loadgen(base_url, templates, seconds)

    def _wrk(self, base_url: str, templates: list[ReportTemplate], seconds: float) -> tuple[float, int]:
        script = self.directory / f"load-{self.count}.lua"
        script.write_text(wrk_script(templates), encoding="utf-8")
        assert self.wrk is not None
        out = run(pinned([self.wrk, "-t1", f"-c{self.sizes.ingest_connections}", f"-d{seconds:g}s", "-s", str(script),
                          base_url + PATH], "client"), timeout=seconds + 60).stdout
        rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        if rate is None:
            raise RuntimeError(f"wrk printed no rate:\n{out}")
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        return float(rate.group(1)), (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)

    def _loadgen(self, base_url: str, templates: list[ReportTemplate], seconds: float) -> tuple[float, int]:
        spec = self.directory / f"load-{self.count}.json"
        spec.write_text(json.dumps({
            "url": base_url + PATH, "seconds": seconds, "connections": self.sizes.ingest_connections,
            "assets": [{"token": t.token, "prefix": t.prefix.decode(), "suffix": t.suffix.decode()} for t in templates],
        }), encoding="utf-8")
        result = json.loads(run(pinned(python_module("bench.loadgen", str(spec)), "client"), timeout=seconds + 60).stdout)
        bad = sum(n for status, n in result["statuses"].items() if not status.startswith("2"))
        return result["requests"] / result["seconds"], bad


def wrk_script(templates: list[ReportTemplate]) -> str:
    """Request n goes to asset n % K with sequence number n // K + 1, as in bench.loadgen."""
    rows = ",\n".join(f'  {{"{t.token}", [==[{t.prefix.decode()}]==], [==[{t.suffix.decode()}]==]}}' for t in templates)
    return f"""-- generated by bench.ingest: one report per request, a new seq every time
local assets = {{
{rows}
}}
local k = #assets
local n = 0
request = function()
  local a = assets[(n % k) + 1]
  local seq = math.floor(n / k) + 1
  n = n + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. a[1]}},
                    a[2] .. seq .. a[3])
end
"""


def applied(url: str) -> tuple[float, float]:
    """(applied, duplicate) reports so far, from the collector's own counters."""
    status, body = http_get(f"{url}/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    text = body.decode()
    return (metric_value(text, "schoolops_reports_accepted_total", result="applied") or 0.0,
            metric_value(text, "schoolops_reports_accepted_total", result="duplicate") or 0.0)


def measure(sizes: Sizes, work: Workdir, profiler: Profiler) -> list[Row]:
    directory = work.sub(NAME)
    row = Row("2", "Ingest: reports applied per second, collector on one core", "reports/s",
              anchor_name="bare aiohttp + orjson handler (parse, 204)", goal="≥ 50 % of the bare handler")
    try:
        import orjson  # the anchor's one dependency
    except ImportError:
        orjson = None
    collector = bare = None
    try:
        collector = start_collector(directory / "collector", {})
        tokens = create_tokens(collector, [f"bench-{i:04d}" for i in range(sizes.ingest_assets)])
        load = Load(directory, tokens, sizes)
        bare_url = None
        if orjson is not None:
            port = free_port()
            bare = start(pinned(python_module("bench.bare", str(port)), "server"), directory / "bare.log")
            bare_url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_get(f"{bare_url}/healthz")[0] == 200, timeout=30, what="the bare handler")
        warm = min(2.0, sizes.ingest_seconds)
        for url in filter(None, (bare_url, collector.url)):
            load(url, warm)  # connections, caches, the first streams: not counted
        ours, anchor, failures = [], [], 0
        ours_cpu, anchor_cpu = [], []  # µs of the server's CPU per request
        for n in range(sizes.runs):
            for who in (("bare", "ours") if n % 2 == 0 else ("ours", "bare")):
                if who == "bare" and bare_url:
                    assert bare is not None
                    cpu = cpu_seconds(bare.pid)
                    rate, bad = load(bare_url, sizes.ingest_seconds)
                    anchor.append(rate)
                    anchor_cpu.append(1e6 * (cpu_seconds(bare.pid) - cpu) / (rate * sizes.ingest_seconds))
                    failures += bad
                elif who == "ours":
                    assert collector.process is not None
                    before, cpu = applied(collector.url), cpu_seconds(collector.process.pid)
                    with profiler.attach(collector, f"{NAME}-collector", sizes.ingest_seconds):
                        rate, bad = load(collector.url, sizes.ingest_seconds)
                    cpu = cpu_seconds(collector.process.pid) - cpu
                    after = applied(collector.url)
                    done = (after[0] - before[0]) + (after[1] - before[1])
                    ours.append(rate * (after[0] - before[0]) / done if done else 0.0)
                    if done:
                        ours_cpu.append(1e6 * cpu / done)
                    failures += bad
        row.ours, row.anchor = Stats.of(ours), Stats.of(anchor)
        row.ratio = paired_ratios(ours, anchor)
        row.judge(lambda r: r >= 0.5)
        body = len(template("x", "y").body(1))
        notes = ["anchor missing: orjson is not installed (pip install -e '.[bench]')"] if orjson is None else []
        notes.append(f"client: {load.client}, {sizes.ingest_seconds:g} s per run; body {body} bytes; "
                     f"{sizes.ingest_assets} assets")
        if ours_cpu and anchor_cpu:
            notes.append(f"server CPU per request (median): ours {Stats(tuple(ours_cpu)).median:.0f} µs, "
                         f"the bare handler {Stats(tuple(anchor_cpu)).median:.0f} µs")
        if failures:
            notes.append(f"{failures} requests failed or were refused")
        row.note = "; ".join(notes)
    finally:
        stop_all(bare, collector)
    return [row]
