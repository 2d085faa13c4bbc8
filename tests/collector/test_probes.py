"""Active probes against real peers on loopback: an aiohttp web server, TLS servers presenting
certificates from a test CA, listening and closed TCP ports, a DNS server speaking real DNS over
UDP, ICMP echo to 127.0.0.1, and the machine's own resolver."""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector import pki
from collector.network.config import ProbeConfig
from collector.network.prober import Prober, crash_backoff
from collector.network.probes import PROBES, run_probe, tls_severity
from schoolops.units import Seconds
from schoolops.wire import ProbeResult
from tests.probe_peers import DnsServer, StartTls, StreamPeer, WebServer, issue_expired, server_context


def probe(kind: str, target: str, *, name: str = "svc", timeout: float = 5, **kwargs: Any) -> ProbeConfig:
    return ProbeConfig(name=name, kind=kind, target=target, timeout=Seconds(timeout), **kwargs)


# --- peers (the servers themselves are in tests/probe_peers.py) ---------------------------------

@pytest.fixture
async def web_server() -> AsyncIterator[WebServer]:
    """A real aiohttp server on 127.0.0.1; the test sets what ``/`` answers."""
    app = web.Application()
    runner = web.AppRunner(app)
    server = WebServer(url="", runner=runner)

    async def index(request: web.Request) -> web.Response:
        return web.Response(status=server.status, text=server.body, content_type="text/html")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (1536 * 1024) + b"Welcome")

    app.router.add_get("/", index)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big", big)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}/"
    yield server
    await runner.cleanup()  # a second cleanup after stop() is harmless


@pytest.fixture
async def closed_port() -> AsyncIterator[int]:
    """A port bound but not listening: connecting to it is refused, and nobody else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("probe-ca") / "ca"
    pki.init_ca(directory, "probe test CA")
    return directory


@pytest.fixture
async def peers() -> AsyncIterator[StreamPeer]:
    peer = StreamPeer()
    yield peer
    await peer.stop()


@pytest.fixture
def start_tls(peers: StreamPeer) -> StartTls:
    """Start real TLS servers on 127.0.0.1 presenting a given certificate; yields their port."""

    async def start(cert: Path, key: Path) -> int:
        return await peers.start(tls=server_context(cert, key))

    return start


@pytest.fixture
async def dns_server() -> AsyncIterator[str]:
    """``127.0.0.1:PORT`` of a DNS server answering for intranet.riverside.example."""
    records = {"intranet.riverside.example.": ["10.20.0.8", "fd00:20::8"]}
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: DnsServer(records), local_addr=("127.0.0.1", 0))
    yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    transport.close()


# --- http ---------------------------------------------------------------------------------------

async def test_http_up_then_500_then_refused(web_server: WebServer) -> None:
    config = probe("http", web_server.url)
    result = await run_probe(config)
    assert result.up and result.status == 200 and result.error is None
    assert result.latency_seconds is not None and result.latency_seconds > 0

    web_server.status = 500
    result = await run_probe(config)
    assert (result.up, result.status, result.error) == (False, 500, "HTTP 500")

    await web_server.stop()
    result = await run_probe(config)
    assert (result.up, result.status, result.error) == (False, None, "connection refused")


async def test_http_body_must_contain_text(web_server: WebServer) -> None:
    assert (await run_probe(probe("http", web_server.url, body_contains="Welcome"))).up
    result = await run_probe(probe("http", web_server.url, body_contains="Timetable"))
    assert (result.up, result.status, result.error) == (False, 200, "body does not contain 'Timetable'")


async def test_http_reads_at_most_one_mebibyte(web_server: WebServer) -> None:
    result = await run_probe(probe("http", web_server.url + "big", body_contains="Welcome"))
    assert not result.up and result.error == "the first 1 MiB of the body does not contain 'Welcome'"


async def test_http_expect_status_and_redirect_limit(web_server: WebServer) -> None:
    web_server.status = 503
    assert (await run_probe(probe("http", web_server.url, expect_status=503))).up
    result = await run_probe(probe("http", web_server.url + "loop"))
    assert not result.up and result.error == "more than 5 redirects"


async def test_http_silent_server_times_out(peers: StreamPeer) -> None:
    port = await peers.start()  # accepts, reads, never answers
    result = await run_probe(probe("http", f"http://127.0.0.1:{port}/", timeout=0.5))
    assert not result.up and result.error == "timed out after 0.5 s"


async def test_https_verifies_against_ca_file(ca_dir: Path, tmp_path: Path) -> None:
    cert, key = pki.issue_cert(ca_dir, ["127.0.0.1"], tmp_path)
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(cert, key)).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
        good = await run_probe(probe("http", url, ca_file=str(ca_dir / pki.CA_CERT)))
        untrusted = await run_probe(probe("http", url))  # the system store does not know the test CA
    finally:
        await runner.cleanup()
    assert good.up and good.status == 200
    assert not untrusted.up and untrusted.error is not None
    assert untrusted.error.startswith("certificate verify failed: ")


# --- tcp ----------------------------------------------------------------------------------------

async def test_tcp_listening_and_closed_port(web_server: WebServer, closed_port: int) -> None:
    port = int(web_server.url.rsplit(":", 1)[1].strip("/"))
    result = await run_probe(probe("tcp", f"127.0.0.1:{port}"))
    assert result.up and result.latency_seconds is not None and result.error is None
    result = await run_probe(probe("tcp", f"127.0.0.1:{closed_port}"))
    assert (result.up, result.error) == (False, "connection refused")


async def test_tcp_over_ipv6_loopback(peers: StreamPeer) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    port = await peers.start("::1")
    assert (await run_probe(probe("tcp", f"[::1]:{port}"))).up


async def test_tcp_unknown_name() -> None:
    result = await run_probe(probe("tcp", "no-such-host.invalid:80"))
    assert (result.up, result.error) == (False, "name not found")


# --- tls ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days", "severity"), [(2, "P2"), (10, "P3"), (90, None)])
async def test_tls_days_left_and_severity(ca_dir: Path, tmp_path: Path, start_tls: StartTls,
                                          days: int, severity: str | None) -> None:
    port = await start_tls(*pki.issue_cert(ca_dir, ["127.0.0.1"], tmp_path, days=days))
    result = await run_probe(probe("tls", f"127.0.0.1:{port}", ca_file=str(ca_dir / pki.CA_CERT)))
    assert result.up and result.error is None and result.latency_seconds is not None
    assert result.days_left == pytest.approx(days, abs=0.01)
    assert tls_severity(result.days_left) == severity


async def test_tls_expired_certificate(ca_dir: Path, tmp_path: Path, start_tls: StartTls) -> None:
    port = await start_tls(*issue_expired(ca_dir, "127.0.0.1", tmp_path, expired_days=3))
    result = await run_probe(probe("tls", f"127.0.0.1:{port}", ca_file=str(ca_dir / pki.CA_CERT)))
    assert not result.up
    assert result.days_left == pytest.approx(-3, abs=0.01)
    assert result.error == "certificate expired 3.0 days ago"
    assert tls_severity(result.days_left) == "P2"


async def test_tls_hostname_mismatch_still_reports_days_left(ca_dir: Path, tmp_path: Path,
                                                             start_tls: StartTls) -> None:
    port = await start_tls(*pki.issue_cert(ca_dir, ["mail.riverside.example"], tmp_path, days=30))
    result = await run_probe(probe("tls", f"127.0.0.1:{port}", ca_file=str(ca_dir / pki.CA_CERT)))
    assert not result.up and result.error is not None
    assert result.error.startswith("certificate verify failed: ") and "mismatch" in result.error
    assert "127.0.0.1" in result.error
    assert result.days_left == pytest.approx(30, abs=0.01)


async def test_tls_untrusted_issuer_still_reports_days_left(ca_dir: Path, tmp_path: Path,
                                                            start_tls: StartTls) -> None:
    port = await start_tls(*pki.issue_cert(ca_dir, ["127.0.0.1"], tmp_path, days=40))
    result = await run_probe(probe("tls", f"127.0.0.1:{port}"))  # system store only
    assert not result.up and result.error is not None and result.error.startswith("certificate verify failed: ")
    assert result.days_left == pytest.approx(40, abs=0.01)


async def test_tls_against_plain_tcp_and_closed_port(web_server: WebServer, closed_port: int) -> None:
    port = int(web_server.url.rsplit(":", 1)[1].strip("/"))
    result = await run_probe(probe("tls", f"127.0.0.1:{port}"))
    assert (result.up, result.error) == (False, "TLS handshake failed: the server does not speak TLS on this port")
    result = await run_probe(probe("tls", f"127.0.0.1:{closed_port}"))
    assert (result.up, result.error, result.days_left) == (False, "connection refused", None)


def test_tls_severity_thresholds() -> None:
    assert [tls_severity(d) for d in (None, 400, 14, 13.9, 3, 2.99, 0, -5)] == \
        [None, None, None, "P3", "P3", "P2", "P2", "P2"]
    assert tls_severity(20, warn_days=30, critical_days=7) == "P3"
    assert tls_severity(5, warn_days=30, critical_days=7) == "P2"


# --- icmp ---------------------------------------------------------------------------------------

async def test_icmp_echo_to_loopback() -> None:
    result = await run_probe(probe("icmp", "127.0.0.1"))
    if result.error is not None and result.error.startswith("ICMP not permitted"):
        pytest.skip(f"this machine allows no ICMP socket to the tests: {result.error}")
    assert result.up and result.error is None
    assert result.latency_seconds is not None and 0 <= result.latency_seconds < 1


async def test_icmp_unknown_name() -> None:
    result = await run_probe(probe("icmp", "no-such-host.invalid"))
    assert (result.up, result.error) == (False, "name not found")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop to nobody")
async def test_icmp_says_why_when_no_socket_is_allowed() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    script = (
        "import asyncio; from collector.network.config import ProbeConfig; "
        "from collector.network.probes import run_probe; "
        "r = asyncio.run(run_probe(ProbeConfig(name='gw', kind='icmp', target='127.0.0.1'))); print(r.up, r.error)"
    )
    process = await asyncio.create_subprocess_exec(
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", script,
        cwd=Path(__file__).parents[2], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, err.decode()
    nogroup = grp.getgrnam("nogroup").gr_gid
    if low <= nogroup <= high:  # the kernel lets nobody ping without privileges
        assert out.decode().strip() == "True None"
    else:
        assert out.decode().strip() == (
            "False ICMP not permitted: unprivileged ICMP socket refused (see sysctl net.ipv4.ping_group_range); "
            "not running as root, so no raw socket either")


# --- dns ----------------------------------------------------------------------------------------

async def test_dns_against_a_given_server(dns_server: str) -> None:
    name = "intranet.riverside.example"
    result = await run_probe(probe("dns", name, dns_server=dns_server, expect_addresses=["10.20.0.8", "fd00:20::8"]))
    assert result.up and result.error is None and result.latency_seconds is not None

    result = await run_probe(probe("dns", name, dns_server=dns_server, expect_addresses=["10.20.0.9"]))
    assert not result.up and result.error == "answer lacks 10.20.0.9 (got 10.20.0.8, fd00:20::8)"

    result = await run_probe(probe("dns", "library.riverside.example", dns_server=dns_server))
    assert (result.up, result.error) == (False, "name not found")


async def test_dns_server_not_answering_times_out(closed_port: int) -> None:
    # nothing listens on UDP at this port: the lookup runs out of time instead of hanging
    result = await run_probe(probe("dns", "intranet.riverside.example", dns_server=f"127.0.0.1:{closed_port}",
                                   timeout=1))
    assert not result.up and result.error is not None
    assert result.error == "timed out after 1 s" or result.error.startswith("no DNS server gave a usable answer")


async def test_dns_unknown_name_is_down(dns_server: str) -> None:
    # asked of the test's own DNS server: tests never query a resolver off this machine
    result = await run_probe(probe("dns", "no-such-host.invalid", dns_server=dns_server))
    assert (result.up, result.error) == (False, "name not found")


# --- registry and Prober ------------------------------------------------------------------------

def test_registry_covers_every_kind() -> None:
    assert set(PROBES) == {"icmp", "tcp", "http", "tls", "dns"}


async def test_probe_once_runs_several_concurrently(web_server: WebServer, closed_port: int, dns_server: str) -> None:
    port = int(web_server.url.rsplit(":", 1)[1].strip("/"))
    items = [
        ("www", probe("http", web_server.url, name="home", body_contains="Welcome")),
        ("www", probe("tcp", f"127.0.0.1:{port}", name="port")),
        ("mail", probe("tcp", f"127.0.0.1:{closed_port}", name="smtp")),
        ("dns-01", probe("dns", "intranet.riverside.example", name="intranet", dns_server=dns_server)),
    ]
    results = await Prober([], lambda *args: None, concurrency=2).probe_once(items)
    assert [(asset, r.name, r.up, r.error) for asset, r in results] == [
        ("www", "home", True, None),
        ("www", "port", True, None),
        ("mail", "smtp", False, "connection refused"),
        ("dns-01", "intranet", True, None),
    ]


async def test_probe_once_leaves_out_a_crashed_probe(web_server: WebServer) -> None:
    async def fragile(config: ProbeConfig) -> ProbeResult:
        if config.name == "broken":
            raise RuntimeError("a bug in a probe")
        return await run_probe(config)

    items = [("www", probe("http", web_server.url, name="home")), ("www", probe("http", web_server.url, name="broken"))]
    results = await Prober([], lambda *args: None, probe=fragile).probe_once(items)
    assert [r.name for _, r in results] == ["home"]


async def test_run_delivers_results_on_each_interval(web_server: WebServer, closed_port: int) -> None:
    delivered: list[tuple[str, str, bool, float]] = []
    done = asyncio.Event()

    async def on_result(asset: str, result: ProbeResult, now: float) -> None:
        delivered.append((asset, result.name, result.up, now))
        if sum(1 for d in delivered if d[1] == "home") >= 2:
            done.set()

    items = [("www", ProbeConfig(name="home", kind="http", target=web_server.url, interval=Seconds(1))),
             ("mail", ProbeConfig(name="smtp", kind="tcp", target=f"127.0.0.1:{closed_port}", interval=Seconds(60)))]
    prober = Prober(items, on_result, clock=lambda: 1_700_000_000.0)
    task = asyncio.create_task(prober.run())
    try:
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ("www", "home", True, 1_700_000_000.0) in delivered
    assert [d for d in delivered if d[1] == "smtp"] == [("mail", "smtp", False, 1_700_000_000.0)]


def test_crash_backoff_doubles_up_to_an_hour() -> None:
    assert [crash_backoff(60, n) for n in (1, 2, 3, 10)] == [120, 240, 480, 3600]
    assert crash_backoff(7200, 3) == 7200


def test_prober_needs_some_concurrency() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Prober([], lambda *args: None, concurrency=0)
