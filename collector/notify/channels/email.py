"""Email through an SMTP relay (aiosmtplib): STARTTLS on 587, implicit TLS on 465, or plain; optional login.

Refusals with a 5xx code, a failed login, a certificate that does not verify and a server without the
STARTTLS or AUTH the config asks for are permanent; connection failures, timeouts and 4xx answers are transient.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

import aiosmtplib

from collector import CollectorError
from collector.notify.channels._common import ack_label
from collector.notify.channels.config import EmailChannel
from collector.notify.model import Message, NotifyError, Recipient


class EmailNotifier:
    kind: ClassVar[str] = "email"

    def __init__(self, config: EmailChannel, *, password: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.id = config.id
        self.max_per_minute = config.max_per_minute
        self.config = config
        self._password = password
        self._clock = clock
        self._tls: ssl.SSLContext | None = None
        if config.security != "none":
            try:  # read the CA file once, now: a missing or bad file stops the start, not every send
                self._tls = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise CollectorError(f"channel {config.id!r}: cannot use ca_file {config.ca_file!r}: {exc}") from exc

    @classmethod
    def from_config(cls, config: EmailChannel, secret: Callable[[str], str]) -> EmailNotifier:
        return cls(config, password=secret(config.password_secret) if config.password_secret else None)

    def compose(self, message: Message, recipient: Recipient) -> EmailMessage:
        if not recipient.address:
            raise NotifyError(f"{self.id}: {recipient.person or recipient.name} has no email address", permanent=True)
        mail = EmailMessage()
        try:
            mail["To"] = Address(display_name=recipient.name, addr_spec=recipient.address)
        except (ValueError, IndexError):  # the address parser's complaints
            raise NotifyError(f"{self.id}: {recipient.address!r} is not an email address", permanent=True) from None
        mail["From"] = self.config.sender
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(self._clock(), usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2])
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the alert address
        if message.severity is not None:
            mail["X-Schoolops-Severity"] = message.severity.label
        if message.incident_id is not None:
            mail["X-Schoolops-Incident"] = str(message.incident_id)
        mail["X-Schoolops-Kind"] = message.kind.value
        body = message.text + (f"\n\n{ack_label(message)}: {message.ack_url}" if message.ack_url else "")
        mail.set_content(body + "\n", subtype="plain", charset="utf-8")
        mail["Content-Language"] = message.language.value  # after set_content, which drops Content-* headers
        return mail

    async def send(self, message: Message, recipient: Recipient) -> None:
        mail = self.compose(message, recipient)
        cfg = self.config
        where = f"{self.id}: SMTP {cfg.host}:{cfg.port}"
        try:
            await aiosmtplib.send(
                mail, hostname=cfg.host, port=cfg.port, timeout=cfg.timeout,
                use_tls=cfg.security == "tls", start_tls=cfg.security == "starttls",
                tls_context=self._tls,
                username=cfg.username, password=self._password,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise NotifyError(f"{where} refused the login of {cfg.username!r} ({exc.code})", permanent=True) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            raise NotifyError(f"{where} refused {recipient.address} ({', '.join(map(str, codes))} "
                              f"{exc.recipients[0].message})", permanent=all(code >= 500 for code in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:  # sender refused, data refused, …
            raise NotifyError(f"{where} answered {exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except ssl.SSLCertVerificationError as exc:
            raise NotifyError(f"{where}: certificate rejected ({exc.verify_message})", permanent=True) from exc
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:  # refused, timeouts
            raise NotifyError(f"{where}: {exc}", permanent=False) from exc
        except aiosmtplib.SMTPException as exc:  # no STARTTLS, no AUTH: the server cannot do what the config asks
            raise NotifyError(f"{where}: {exc}", permanent=True) from exc

    async def close(self) -> None:
        """Nothing to close: each send opens and closes its own SMTP connection."""
