"""The small CA: certificates it issues make a real TLS handshake verify, by name and by address."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from collector import pki


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(ca dir, cert, key) for localhost and 127.0.0.1; made once, key generation is the slow part."""
    base = tmp_path_factory.mktemp("pki")
    ca_dir = base / "ca"
    pki.init_ca(ca_dir)
    cert, key = pki.issue_cert(ca_dir, ["localhost", "127.0.0.1"], base / "tls")
    return ca_dir, cert, key


@pytest.fixture
async def tls_server(issued: tuple[Path, Path, Path]) -> AsyncIterator[int]:
    """A real TLS echo server on 127.0.0.1 presenting the issued certificate; yields its port."""
    _, cert, key = issued
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readline())
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def talk(port: int, cafile: Path, server_hostname: str) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=server_hostname), timeout=5
    )
    try:
        writer.write(b"hello\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
async def test_a_client_trusting_the_ca_completes_the_handshake(
    tls_server: int, issued: tuple[Path, Path, Path], server_hostname: str
) -> None:
    ca_dir, _, _ = issued
    assert await talk(tls_server, ca_dir / pki.CA_CERT, server_hostname) == b"hello\n"


async def test_a_name_not_in_the_certificate_fails_verification(
    tls_server: int, issued: tuple[Path, Path, Path]
) -> None:
    ca_dir, _, _ = issued
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        await talk(tls_server, ca_dir / pki.CA_CERT, "collector.school.lan")


async def test_a_client_trusting_another_ca_refuses_the_certificate(tls_server: int, tmp_path: Path) -> None:
    other = pki.init_ca(tmp_path / "other-ca", name="another school CA")
    with pytest.raises(ssl.SSLCertVerificationError):
        await talk(tls_server, other, "localhost")


def test_the_server_certificate_names_its_hosts_and_is_not_a_ca(issued: tuple[Path, Path, Path]) -> None:
    ca_dir, cert_path, _ = issued
    chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    cert, ca = chain
    assert ca == x509.load_pem_x509_certificate((ca_dir / pki.CA_CERT).read_bytes())  # the chain to present
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.subject


def test_private_keys_are_mode_0600(issued: tuple[Path, Path, Path]) -> None:
    ca_dir, cert, key = issued
    assert (ca_dir / pki.CA_KEY).stat().st_mode & 0o777 == 0o600
    assert key.stat().st_mode & 0o777 == 0o600
    assert cert.stat().st_mode & 0o777 == 0o644
    assert ca_dir.stat().st_mode & 0o077 == 0


def test_init_ca_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    cert = pki.init_ca(ca_dir)
    before = cert.read_bytes(), (ca_dir / pki.CA_KEY).read_bytes()
    with pytest.raises(pki.PkiError, match=r"a CA exists already in .*--force"):
        pki.init_ca(ca_dir)
    assert (cert.read_bytes(), (ca_dir / pki.CA_KEY).read_bytes()) == before


def test_init_ca_with_force_replaces_the_ca_and_keeps_the_key_private(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    cert = pki.init_ca(ca_dir)
    old = cert.read_bytes()
    (ca_dir / pki.CA_KEY).chmod(0o644)  # loosened by hand since
    pki.init_ca(ca_dir, force=True)
    assert cert.read_bytes() != old
    assert (ca_dir / pki.CA_KEY).stat().st_mode & 0o777 == 0o600


def test_issue_cert_without_a_ca_names_the_directory(tmp_path: Path) -> None:
    empty = tmp_path / "no-ca-here"
    empty.mkdir()
    with pytest.raises(pki.PkiError) as info:
        pki.issue_cert(empty, ["localhost"], tmp_path / "out")
    assert f"no CA in {empty}" in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["collector school", "a/b", "user@host", ""])
def test_a_name_that_is_neither_dns_nor_ip_is_refused(issued: tuple[Path, Path, Path], tmp_path: Path, name: str) -> None:
    ca_dir, _, _ = issued
    with pytest.raises(pki.PkiError, match="neither a DNS name nor an IP address"):
        pki.issue_cert(ca_dir, ["localhost", name], tmp_path / "out")


def test_issue_cert_needs_at_least_one_name(issued: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ca_dir, _, _ = issued
    with pytest.raises(pki.PkiError, match="at least one"):
        pki.issue_cert(ca_dir, [], tmp_path / "out")
