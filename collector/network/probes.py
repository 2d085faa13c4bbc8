"""Active probes of a school's services: ICMP echo, TCP connect, HTTP(S), TLS certificate, DNS.

Each probe kind is one ``async`` function ``(ProbeConfig) -> ProbeResult``, found through the
explicit registry :data:`PROBES`. A failed service never raises: the failure *is* the result,
``up=False`` with ``error`` in plain words ("connection refused", "HTTP 500", "name not found").
Every probe is bounded by its config's ``timeout`` ("timed out after 10 s").

:class:`~collector.network.prober.Prober` is the shell that runs them: each probe on its own
interval, at most ``concurrency`` at once, delivering ``on_result(asset, result, now)``.
:func:`tls_severity` is pure: it turns a certificate's ``days_left`` into a severity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Mapping
from types import MappingProxyType

import aiohappyeyeballs
import aiohttp
import dns.asyncresolver
import dns.exception
import dns.resolver
import icmplib  # type: ignore[import-untyped]
from cryptography import x509

from collector.domain import Severity
from collector.network.config import ProbeConfig
from collector.network.probe_results import ProbeFn, _bounded, _describe, _down, _result, _tls_text
from schoolops.wire import ProbeResult

PING_COUNT, PING_INTERVAL = 3, 0.2  # echo requests per ICMP probe, seconds between them
MAX_REDIRECTS = 5
MAX_BODY = 1 << 20  # body_contains looks at the first 1 MiB
USER_AGENT = "schoolops-probe/1"
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended head start for the first address family
TLS_WARN_DAYS, TLS_CRITICAL_DAYS = 14.0, 3.0  # the product's defaults, see tls_severity


# --- small shared pieces (the result and the failure's words: collector.network.probe_results) ---

def _host_port(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); ValueError naming the target otherwise."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port with a port 1-65535, got {target!r}")
    return host, int(port_text)


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)  # ca_file None: the system store


async def _connect(host: str, port: int) -> socket.socket:
    """A connected TCP socket, trying every address of ``host`` (happy eyeballs).

    aiohappyeyeballs keeps the errno when every address fails alike, so "localhost" with nothing
    listening still reads "connection refused" (Python 3.11's create_connection loses it).
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return await aiohappyeyeballs.start_connection(infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)


# --- the probes ---------------------------------------------------------------------------------

@_bounded
async def probe_icmp(config: ProbeConfig) -> ProbeResult:
    """Echo requests to ``target`` (a host); latency is the average round trip.

    Tries an unprivileged ICMP socket first (allowed by ``net.ipv4.ping_group_range``), then a raw
    socket when running as root.
    """
    address = config.target.removeprefix("[").removesuffix("]")
    per_reply = max(0.1, (config.timeout - (PING_COUNT - 1) * PING_INTERVAL) / PING_COUNT)
    attempts = [False, True] if os.geteuid() == 0 else [False]
    refused: list[str] = []
    for privileged in attempts:
        try:
            host = await icmplib.async_ping(address, count=PING_COUNT, interval=PING_INTERVAL, timeout=per_reply,
                                            privileged=privileged)
        except icmplib.SocketPermissionError:
            refused.append("raw ICMP socket refused as root (needs CAP_NET_RAW)" if privileged else
                           "unprivileged ICMP socket refused (see sysctl net.ipv4.ping_group_range)")
            continue
        except icmplib.NameLookupError:
            return _down(config, "name not found")
        except icmplib.ICMPLibError as exc:
            return _down(config, f"ping failed: {exc}")
        except OSError as exc:
            return _down(config, _describe(exc))
        if not host.is_alive:
            return _down(config, f"no echo reply to {PING_COUNT} pings")
        return _result(config, up=True, latency_seconds=host.avg_rtt / 1000)
    if len(attempts) == 1:
        refused.append("not running as root, so no raw socket either")
    return _down(config, "ICMP not permitted: " + "; ".join(refused))


@_bounded
async def probe_tcp(config: ProbeConfig) -> ProbeResult:
    """A TCP connection to ``host:port``; latency is the time to connect (name lookup included)."""
    try:
        host, port = _host_port(config.target)
    except ValueError as exc:
        return _down(config, f"target: {exc}")
    started = time.perf_counter()
    try:
        sock = await _connect(host, port)
    except OSError as exc:
        return _down(config, _describe(exc))
    latency = time.perf_counter() - started
    sock.close()
    return _result(config, up=True, latency_seconds=latency)


async def _read_body(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The first MAX_BODY bytes of the body, and whether there was more."""
    body = bytearray()
    while len(body) < MAX_BODY:
        chunk = await response.content.read(MAX_BODY - len(body))
        if not chunk:
            return bytes(body), False
        body += chunk
    return bytes(body), not response.content.at_eof()


def _http_error(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        reason = getattr(cert_error, "verify_message", None) or str(cert_error)
        return f"certificate verify failed: {reason}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return _tls_text(exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _describe(exc.os_error)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without answering"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    return f"HTTP request failed: {exc}"


@_bounded
async def probe_http(config: ProbeConfig) -> ProbeResult:
    """GET ``target``; up when the status is ``expect_status`` (default any 2xx/3xx) and the body
    holds ``body_contains``. Latency is the time until the final response's headers arrived."""
    try:
        context = _ssl_context(config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        return _down(config, f"ca_file {config.ca_file}: {_describe(exc)}")
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, force_close=True), trust_env=False,
        timeout=aiohttp.ClientTimeout(total=config.timeout), headers={"User-Agent": USER_AGENT},
    )
    started = time.perf_counter()
    try:
        async with session, session.get(config.target, max_redirects=MAX_REDIRECTS) as response:
            latency = time.perf_counter() - started
            body, truncated = (b"", False) if config.body_contains is None else await _read_body(response)
            charset = response.charset or "utf-8"
    except aiohttp.ClientError as exc:
        return _down(config, _http_error(exc))
    status = response.status
    expected = status == config.expect_status if config.expect_status else 200 <= status < 400
    if not expected:
        return _down(config, f"HTTP {status}", status=status, latency_seconds=latency)
    if config.body_contains is not None:
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        if config.body_contains not in text:
            where = "the first 1 MiB of the body" if truncated else "body"
            return _down(config, f"{where} does not contain {config.body_contains!r}", status=status,
                         latency_seconds=latency)
    return _result(config, up=True, status=status, latency_seconds=latency)


async def _peer_certificate(host: str, port: int, context: ssl.SSLContext) -> bytes:
    """The DER certificate a TLS server presents to ``host`` (sent as SNI unless an address)."""
    sock = await _connect(host, port)
    try:
        _, writer = await asyncio.open_connection(sock=sock, ssl=context, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    try:
        tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
    finally:
        writer.transport.abort()  # no close_notify dance: a probe has nothing left to say
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@_bounded
async def probe_tls(config: ProbeConfig) -> ProbeResult:
    """A TLS handshake with ``host:port``, verified against ``ca_file`` or the system store.

    ``days_left`` (until notAfter) is reported even when verification fails: a second,
    non-verifying handshake reads the certificate. Up when verified and not expired. Latency is
    the time to a verified handshake (connect included).
    """
    try:
        host, port = _host_port(config.target)
        context = _ssl_context(config.ca_file)
    except ValueError as exc:
        return _down(config, f"target: {exc}")
    except (OSError, ssl.SSLError) as exc:
        return _down(config, f"ca_file {config.ca_file}: {_describe(exc)}")
    host = host.strip("[]")
    started = time.perf_counter()
    verify_error: str | None = None
    latency: float | None = None
    try:
        der: bytes | None = await _peer_certificate(host, port, context)
        latency = time.perf_counter() - started
    except ssl.SSLCertVerificationError as exc:
        verify_error = (exc.verify_message or exc.reason or str(exc)).rstrip(".")
        try:
            der = await _peer_certificate(host, port, _unverified_context())
        except OSError:  # ssl.SSLError included: the certificate stays unknown
            der = None
    except ssl.SSLError as exc:
        return _down(config, _tls_text(exc))
    except OSError as exc:
        return _down(config, _describe(exc))
    days_left: float | None = None
    problems: list[str] = []
    if der is not None:
        try:
            not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
        except ValueError as exc:
            problems.append(f"cannot read the certificate: {exc}")
        else:
            days_left = round((not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400, 4)
            if days_left <= 0:
                problems.append(f"certificate expired {-days_left:.1f} days ago")
    if verify_error is not None and not (problems and verify_error == "certificate has expired"):
        problems.append(f"certificate verify failed: {verify_error}")
    up = verify_error is None and days_left is not None and days_left > 0
    return _result(config, up=up, latency_seconds=latency, days_left=days_left, error="; ".join(problems) or None)


async def _nameservers(server: str) -> tuple[list[str], int]:
    """``dns_server`` (address or name, optional ``:port`` / ``[v6]:port``) → addresses, port."""
    host, port = server, 53
    if server.startswith("[") or server.count(":") == 1:
        host, port = _host_port(server)
        host = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(host))], port
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos)), port


@_bounded
async def probe_dns(config: ProbeConfig) -> ProbeResult:
    """Resolve ``target`` (A and AAAA) at ``dns_server`` or the system's nameservers (resolv.conf,
    not /etc/hosts); up when it resolves and every ``expect_addresses`` entry is in the answer."""
    try:
        expected = [ipaddress.ip_address(a) for a in config.expect_addresses]
    except ValueError as exc:
        return _down(config, f"expect_addresses: {exc}")
    try:
        resolver = dns.asyncresolver.Resolver(configure=config.dns_server is None)
        if config.dns_server is not None:
            resolver.nameservers, resolver.port = await _nameservers(config.dns_server)
    except dns.resolver.NoResolverConfiguration:
        return _down(config, "no system DNS server configured (/etc/resolv.conf)")
    except (ValueError, OSError) as exc:
        return _down(config, f"dns_server {config.dns_server}: {_describe(exc) if isinstance(exc, OSError) else exc}")
    started = time.perf_counter()
    try:
        answer = await resolver.resolve_name(config.target, lifetime=config.timeout)
    except dns.resolver.NXDOMAIN:
        return _down(config, "name not found")
    except dns.resolver.NoAnswer:
        return _down(config, "the name has no address records")
    except dns.resolver.NoNameservers as exc:
        return _down(config, f"no DNS server gave a usable answer: {exc}")
    except dns.exception.Timeout:
        return _down(config, f"timed out after {config.timeout:g} s")
    except dns.exception.DNSException as exc:
        return _down(config, f"DNS lookup failed: {exc}")
    latency = time.perf_counter() - started
    got = {ipaddress.ip_address(a) for a in answer.addresses()}
    missing = [str(a) for a in expected if a not in got]
    if missing:
        return _down(config, f"answer lacks {', '.join(missing)} (got {', '.join(sorted(map(str, got)))})",
                     latency_seconds=latency)
    return _result(config, up=True, latency_seconds=latency)


PROBES: Mapping[str, ProbeFn] = MappingProxyType({
    "icmp": probe_icmp,
    "tcp": probe_tcp,
    "http": probe_http,
    "tls": probe_tls,
    "dns": probe_dns,
})


async def run_probe(config: ProbeConfig) -> ProbeResult:
    """Run the probe of ``config.kind``; a failed service is a result with ``up=False``, not an error."""
    return await PROBES[config.kind](config)


def tls_severity(days_left: float | None, *, warn_days: float = TLS_WARN_DAYS,
                 critical_days: float = TLS_CRITICAL_DAYS) -> str | None:
    """Severity of a certificate's remaining life: "P2" below ``critical_days``, "P3" below
    ``warn_days``, None otherwise (or when unknown).

    The product's defaults: warn 14 days before expiry (two weeks leaves time to renew through a
    school's purchasing or the vendor), critical 3 days (renew today). An expired certificate
    (days_left <= 0) is "P2" too; the probe reports it down as well.
    """
    if days_left is None:
        return None
    if days_left < critical_days:
        return Severity.P2.label
    if days_left < warn_days:
        return Severity.P3.label
    return None
