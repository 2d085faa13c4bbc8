"""Real peers for the probe tests: an aiohttp web server, TCP/TLS servers, a DNS server over UDP,
and expired certificates from the test CA; all on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector import pki


@dataclass
class WebServer:
    url: str
    runner: web.AppRunner
    status: int = 200
    body: str = "<h1>Welcome to Riverside School</h1>"

    async def stop(self) -> None:
        await self.runner.cleanup()


def issue_expired(ca_dir: Path, name: str, out_dir: Path, *, expired_days: float) -> tuple[Path, Path]:
    """A certificate that expired ``expired_days`` ago (pki.issue_cert only makes valid ones)."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / pki.CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / pki.CA_KEY).read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now - dt.timedelta(days=expired_days))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "expired.pem", out_dir / "expired-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def expiring_tls_server(directory: Path, handler: type[BaseHTTPRequestHandler], *,
                        days: float) -> tuple[ThreadingHTTPServer, int]:
    """An HTTPS server on 127.0.0.1 whose self-signed certificate (for ``localhost``) expires in ``days``;
    its certificate is ``directory/tls.pem`` (the CA file to trust). Stop it with ``shutdown()``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.school.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "tls.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = server_context(directory / "tls.pem", directory / "tls-key.pem").wrap_socket(
        server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class StreamPeer:
    """A real TCP (or TLS) server on loopback that reads until the client leaves.

    ``stop`` also ends the connection handlers and closes their sockets: Python 3.11's
    ``Server.wait_closed`` does not wait for them.
    """

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await reader.read()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    async def start(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(self._serve, host, 0, ssl=tls)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports close their sockets


StartTls = Callable[[Path, Path], Awaitable[int]]


@dataclass
class DnsServer(asyncio.DatagramProtocol):
    """A DNS server for one small zone, over real UDP; messages built and parsed by dnspython."""

    records: dict[str, list[str]]
    transport: asyncio.DatagramTransport | None = field(default=None, init=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        addresses = self.records.get(question.name.to_text().lower())
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            family = ":" if question.rdtype == dns.rdatatype.AAAA else "."
            matching = [a for a in addresses if family in a]
            if matching:
                response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", question.rdtype, matching))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
