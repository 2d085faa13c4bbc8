"""A generic JSON webhook: an SMS gateway, a ticket system, anything that takes a POST.

The body is one JSON object (see ``payload``). With a signing secret, ``config.signature_header`` carries
``sha256=<hex HMAC-SHA256(secret, raw body)>``; the body holds ``sent_at``, so the signature covers the
time too, and ``X-Schoolops-Timestamp`` (unix seconds) lets a receiver refuse old replays cheaply.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import ClassVar

import msgspec

from collector.notify.channels._common import HttpEndpoint, rfc3339
from collector.notify.channels.config import WebhookChannel
from collector.notify.model import Message, Recipient


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    kind: ClassVar[str] = "webhook"

    def __init__(self, config: WebhookChannel, *, signing_secret: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.id = config.id
        self.max_per_minute = config.max_per_minute
        self._url = config.url
        self._header = config.signature_header
        self._secret = signing_secret
        self._clock = clock
        self._http = HttpEndpoint(config.id, config.timeout)

    @classmethod
    def from_config(cls, config: WebhookChannel, secret: Callable[[str], str]) -> WebhookNotifier:
        return cls(config, signing_secret=secret(config.signing_secret) if config.signing_secret else None)

    @staticmethod
    def payload(message: Message, recipient: Recipient, now: float) -> dict[str, object]:
        return {
            "kind": message.kind.value,
            "severity": message.severity.label if message.severity is not None else None,
            "incident": message.incident_id,
            "subject": message.subject,
            "text": message.text,
            "language": message.language.value,
            "ack_url": message.ack_url,
            "recipient": {"person": recipient.person, "name": recipient.name, "address": recipient.address},
            "sent_at": rfc3339(now),
        }

    async def send(self, message: Message, recipient: Recipient) -> None:
        now = self._clock()
        body = msgspec.json.encode(self.payload(message, recipient, now))
        headers = {"X-Schoolops-Timestamp": str(int(now))}
        if self._secret is not None:
            headers[self._header] = signature(self._secret, body)
        await self._http.post(self._url, body, headers)

    async def close(self) -> None:
        await self._http.close()
