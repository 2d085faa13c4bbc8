"""The shared types of notification: a message, a recipient, a channel, and the one error channels raise."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Protocol

from collector import CollectorError
from collector.domain import Severity


class Language(enum.StrEnum):
    ZH_CN = "zh-CN"
    ZH_TW = "zh-TW"
    EN = "en"


class MessageKind(enum.StrEnum):
    PAGE = "page"  # an incident needs someone (first notice, escalation step)
    REMINDER = "reminder"  # still unacknowledged / acknowledged but unresolved
    PROGRESS = "progress"  # the director's timed progress report on a P1/P2
    SUMMARY = "summary"  # the closing summary when a P1/P2 is resolved
    DIGEST = "digest"  # several messages merged to respect a channel's rate limit
    SECURITY_CLOCK = "security_clock"  # the deadline to report a security incident upward
    CHANNEL_BROKEN = "channel_broken"  # a channel failed permanently: never silent


@dataclass(frozen=True)
class Message:
    kind: MessageKind
    language: Language
    subject: str  # one line
    text: str  # plain text, a few short lines; channels may render it as Markdown
    severity: Severity | None = None
    incident_id: int | None = None
    ack_url: str | None = None  # a signed one-click link, when acknowledging makes sense


@dataclass(frozen=True)
class Recipient:
    person: str  # the person's id in the on-call file ("" for a group channel without a person)
    name: str  # how to address them
    address: str | None = None  # email address, phone number or chat user id, as the channel needs


class NotifyError(CollectorError):
    """A delivery failed. ``permanent``: retrying cannot help (bad credentials, a 4xx): the channel is
    marked broken and the person's next channel is used. Otherwise it is retried with backoff."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    kind: ClassVar[str]
    id: str
    max_per_minute: int  # robots accept 20 a minute; past that the dispatcher merges into digests

    async def send(self, message: Message, recipient: Recipient) -> None:
        """Deliver or raise NotifyError. Never log the secret parts of the endpoint."""
        ...
