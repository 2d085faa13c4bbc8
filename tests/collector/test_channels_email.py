"""The email notifier against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS, implicit TLS, AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from collector import CollectorError
from collector.domain import Severity
from collector.notify.channels import build_channel
from collector.notify.channels.config import EmailChannel
from collector.notify.channels.email import EmailNotifier
from collector.notify.model import (
    Language,
    Message,
    MessageKind,
    NotifyError,
    Recipient,
)
from collector.pki import init_ca, issue_cert
from schoolops.units import Seconds

SUBJECT = "【P2 重大】web-01 磁盤將滿"
MESSAGE = Message(
    kind=MessageKind.PAGE, language=Language.ZH_TW, subject=SUBJECT,
    text="web-01 的 /var 已用 93%，預計 6 小時內寫滿。\n請盡快清理日誌。",
    severity=Severity.P2, incident_id=42, ack_url="https://ops.school.example/ack/42?sig=abc123",
)
WANG = Recipient(person="wang", name="王老師", address="wang@school.example")
PASSWORD = "correct horse battery staple"


class Inbox:
    """An aiosmtpd handler that keeps what it receives; ``refuse`` answers RCPT TO with that reply."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class KernelPortController(Controller):
    """aiosmtpd's Controller on 127.0.0.1 with a port the kernel picks (it assumes a fixed port)."""

    def __init__(self, handler: Inbox, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def one_user(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A private CA (the project's own) and a server certificate for 127.0.0.1; returns (CA file, server context)."""
    root = tmp_path_factory.mktemp("pki")
    ca_cert = init_ca(root / "ca")
    cert, key = issue_cert(root / "ca", ["127.0.0.1", "localhost"], root / "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return ca_cert, context


@pytest.fixture
def smtp() -> Iterator[Any]:
    started: list[Controller] = []

    def start(handler: Inbox, **kwargs: Any) -> KernelPortController:
        controller = KernelPortController(handler, **kwargs)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(autouse=True)
async def drain_closing_connections() -> AsyncIterator[None]:
    """aiosmtplib closes its transport without awaiting the close: give the loop a moment before the test's
    loop is closed, or an unlucky schedule reports the client socket as unclosed."""
    yield
    await asyncio.sleep(0.05)


def channel(port: int, **overrides: Any) -> EmailChannel:
    fields: dict[str, Any] = {"id": "mail", "host": "127.0.0.1", "port": port, "sender": "alerts@school.example",
                              "security": "none", "timeout": Seconds(5)}
    return EmailChannel(**(fields | overrides))


async def test_a_message_arrives_with_its_chinese_subject_body_link_and_headers(smtp: Any) -> None:
    inbox = Inbox()
    server = smtp(inbox)
    await EmailNotifier(channel(server.port)).send(MESSAGE, WANG)

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "alerts@school.example"
    assert envelope.rcpt_tos == ["wang@school.example"]
    mail = inbox.message()
    assert mail["From"] == "alerts@school.example"
    assert mail["To"].addresses[0].addr_spec == "wang@school.example"
    assert mail["To"].addresses[0].display_name == "王老師"
    assert mail["Subject"] == SUBJECT
    assert mail["X-Schoolops-Severity"] == "P2"
    assert mail["X-Schoolops-Incident"] == "42"
    assert mail["Content-Language"] == "zh-TW"
    assert mail["Date"] and mail["Message-ID"]
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    lines = mail.get_content().rstrip("\n").splitlines()
    assert lines[:2] == MESSAGE.text.splitlines()
    assert lines[-1] == "點擊確認: https://ops.school.example/ack/42?sig=abc123"


async def test_the_raw_subject_is_encoded_not_sent_as_8bit(smtp: Any) -> None:
    # a relay without SMTPUTF8 must get RFC 2047 encoded words, or old clients show mojibake
    inbox = Inbox()
    await EmailNotifier(channel(smtp(inbox).port)).send(MESSAGE, WANG)
    raw = inbox.envelopes[0].original_content
    assert isinstance(raw, bytes)
    subject_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line.lower()


async def test_starttls_verified_against_a_private_ca(smtp: Any, tls_files: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, server_context = tls_files
    inbox = Inbox()
    server = smtp(inbox, tls_context=server_context, require_starttls=True)
    await EmailNotifier(channel(server.port, security="starttls", ca_file=str(ca_file))).send(MESSAGE, WANG)
    assert inbox.message()["Subject"] == SUBJECT


async def test_a_server_certificate_that_does_not_verify_is_permanent(
        smtp: Any, tls_files: tuple[Path, ssl.SSLContext]) -> None:
    _, server_context = tls_files
    server = smtp(Inbox(), tls_context=server_context, require_starttls=True)
    with pytest.raises(NotifyError) as caught:  # the system store does not know the private CA
        await EmailNotifier(channel(server.port, security="starttls")).send(MESSAGE, WANG)
    assert caught.value.permanent


async def test_starttls_required_by_config_but_not_offered_is_permanent(smtp: Any) -> None:
    server = smtp(Inbox())
    with pytest.raises(NotifyError) as caught:
        await EmailNotifier(channel(server.port, security="starttls")).send(MESSAGE, WANG)
    assert caught.value.permanent


async def test_implicit_tls(smtp: Any, tls_files: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, server_context = tls_files
    inbox = Inbox()
    server = smtp(inbox, ssl_context=server_context)
    await EmailNotifier(channel(server.port, security="tls", ca_file=str(ca_file))).send(MESSAGE, WANG)
    assert inbox.message()["Subject"] == SUBJECT


async def test_login_with_the_right_password_then_a_wrong_one(smtp: Any, tls_files: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, server_context = tls_files
    inbox = Inbox()
    server = smtp(inbox, tls_context=server_context, require_starttls=True, authenticator=one_user, auth_required=True)
    config = channel(server.port, security="starttls", ca_file=str(ca_file), username="alerts", password_secret="smtp")

    await build_channel(config, {"smtp": PASSWORD}.__getitem__).send(MESSAGE, WANG)
    assert len(inbox.envelopes) == 1

    with pytest.raises(NotifyError) as caught:
        await build_channel(config, {"smtp": "wrong password"}.__getitem__).send(MESSAGE, WANG)
    assert caught.value.permanent
    assert "wrong password" not in str(caught.value)
    assert len(inbox.envelopes) == 1


async def test_a_missing_password_secret_names_the_channel_and_the_secret() -> None:
    config = channel(25, username="alerts", password_secret="smtp")
    with pytest.raises(CollectorError) as caught:
        build_channel(config, dict[str, str]().__getitem__)
    assert not isinstance(caught.value, NotifyError)
    assert "'mail'" in str(caught.value) and "'smtp'" in str(caught.value)


def test_a_ca_file_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(CollectorError) as caught:
        EmailNotifier(channel(587, security="starttls", ca_file=str(tmp_path / "missing.pem")))
    assert "'mail'" in str(caught.value) and "missing.pem" in str(caught.value)


@pytest.mark.parametrize(("reply", "permanent"), [("550 5.1.1 No such user here", True),
                                                   ("450 4.2.1 Mailbox busy, try later", False)])
async def test_a_refused_recipient_is_permanent_for_5xx_transient_for_4xx(smtp: Any, reply: str, permanent: bool) -> None:
    server = smtp(Inbox(refuse=reply))
    with pytest.raises(NotifyError) as caught:
        await EmailNotifier(channel(server.port)).send(MESSAGE, WANG)
    assert caught.value.permanent is permanent
    assert reply.split()[0] in str(caught.value)


async def test_a_recipient_without_an_address_is_permanent() -> None:
    with pytest.raises(NotifyError) as caught:
        await EmailNotifier(channel(25)).send(MESSAGE, Recipient(person="li", name="李老師"))
    assert caught.value.permanent


async def test_nothing_listening_is_transient() -> None:
    with socket.socket() as bound:  # bound, never listening: the port is ours and connecting is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(NotifyError) as caught:
            await EmailNotifier(channel(port)).send(MESSAGE, WANG)
    assert not caught.value.permanent


async def test_a_server_that_never_answers_is_a_transient_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(NotifyError) as caught:
            await EmailNotifier(channel(silent.getsockname()[1], timeout=Seconds(0.3))).send(MESSAGE, WANG)
    assert not caught.value.permanent
