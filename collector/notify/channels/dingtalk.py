"""A DingTalk (釘釘) group robot with signing.

Each request carries ``timestamp`` (ms) and ``sign`` = urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{timestamp}\\n{secret}"))) in its query; DingTalk refuses a timestamp more than an hour away from its
clock (errcode 310000). A mention needs both ``at.atMobiles``/``at.atUserIds`` and ``@…`` in the text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import quote_plus

import msgspec
from yarl import URL

from collector.notify.channels._common import (
    MOBILE,
    HttpEndpoint,
    ack_label,
    check_robot_answer,
)
from collector.notify.channels.config import DingtalkChannel
from collector.notify.model import Message, Recipient

_TRANSIENT = {-1: None, 130101: 60.0}  # system busy; more than 20 messages a minute


def sign(secret: str, timestamp_ms: int) -> str:
    """The signature as it goes into the query string (already URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


class DingtalkNotifier:
    kind: ClassVar[str] = "dingtalk"

    def __init__(self, config: DingtalkChannel, *, url: str, signing_secret: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.id = config.id
        self.max_per_minute = config.max_per_minute
        self._url = url
        self._secret = signing_secret
        self._clock = clock
        self._http = HttpEndpoint(config.id, config.timeout)

    @classmethod
    def from_config(cls, config: DingtalkChannel, secret: Callable[[str], str]) -> DingtalkNotifier:
        return cls(config, url=secret(config.url_secret), signing_secret=secret(config.signing_secret))

    def signed_url(self) -> URL:
        timestamp = int(self._clock() * 1000)
        separator = "&" if "?" in self._url else "?"
        return URL(f"{self._url}{separator}timestamp={timestamp}&sign={sign(self._secret, timestamp)}", encoded=True)

    @staticmethod
    def payload(message: Message, recipient: Recipient) -> dict[str, object]:
        lines = [f"#### {message.subject}", *message.text.splitlines()]
        if message.ack_url:
            lines.append(f"[{ack_label(message)}]({message.ack_url})")
        at: dict[str, object] = {"atMobiles": [], "atUserIds": [], "isAtAll": False}
        if address := recipient.address:
            at["atMobiles" if MOBILE.match(address) else "atUserIds"] = [address]
            lines.append(f"@{address}")
        # DingTalk's markdown needs a blank line to break a line
        return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": "\n\n".join(lines)}, "at": at}

    async def send(self, message: Message, recipient: Recipient) -> None:
        url = self.signed_url()
        body = await self._http.post(url, msgspec.json.encode(self.payload(message, recipient)))
        check_robot_answer(self.id, url, body, _TRANSIENT)

    async def close(self) -> None:
        await self._http.close()
