"""A WeCom (企業微信) group robot: POST a markdown message to the robot's webhook URL, whose key is the secret.

WeCom documents ``<@userid>`` inside text and markdown content to mention a group member; a mention by
mobile number exists only for text messages (``mentioned_mobile_list``), so a recipient whose address is
a mobile number gets a text message, anyone else markdown. WeCom answers HTTP 200 with ``errcode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import msgspec

from collector.notify.channels._common import (
    MOBILE,
    HttpEndpoint,
    ack_label,
    check_robot_answer,
    truncate_utf8,
)
from collector.notify.channels.config import WecomChannel
from collector.notify.model import Message, Recipient

_TRANSIENT = {-1: None, 45009: 60.0}  # system busy; more than 20 messages a minute: the robot accepts again next minute
_MARKDOWN_LIMIT, _TEXT_LIMIT = 4096, 2048  # bytes of UTF-8, per WeCom


class WecomNotifier:
    kind: ClassVar[str] = "wecom"

    def __init__(self, config: WecomChannel, *, url: str) -> None:
        self.id = config.id
        self.max_per_minute = config.max_per_minute
        self._url = url
        self._http = HttpEndpoint(config.id, config.timeout)

    @classmethod
    def from_config(cls, config: WecomChannel, secret: Callable[[str], str]) -> WecomNotifier:
        return cls(config, url=secret(config.url_secret))

    def payload(self, message: Message, recipient: Recipient) -> dict[str, object]:
        address = recipient.address
        if address and MOBILE.match(address):
            lines = [message.subject, message.text] + ([f"{ack_label(message)}: {message.ack_url}"] if message.ack_url else [])
            return {"msgtype": "text", "text": {"content": truncate_utf8("\n".join(lines), _TEXT_LIMIT),
                                                "mentioned_mobile_list": [address]}}
        lines = [f"**{message.subject}**", message.text]
        if message.ack_url:
            lines.append(f"[{ack_label(message)}]({message.ack_url})")
        mention = f"\n<@{address}>" if address else ""
        content = truncate_utf8("\n".join(lines), _MARKDOWN_LIMIT - len(mention.encode())) + mention
        return {"msgtype": "markdown", "markdown": {"content": content}}

    async def send(self, message: Message, recipient: Recipient) -> None:
        body = await self._http.post(self._url, msgspec.json.encode(self.payload(message, recipient)))
        check_robot_answer(self.id, self._url, body, _TRANSIENT)

    async def close(self) -> None:
        await self._http.close()
