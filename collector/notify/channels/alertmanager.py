"""Alertmanager's webhook payload (version 4), for receivers written for Alertmanager.

One message is one group with one alert. Its labels (alertname, severity, incident) stay the same from
the first page to the closing summary, so the fingerprint does too and the summary resolves the alert.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import urlsplit

import msgspec

from collector.notify.channels._common import HttpEndpoint, rfc3339
from collector.notify.channels.config import AlertmanagerChannel
from collector.notify.model import Message, MessageKind, Recipient

_NOT_ENDED = "0001-01-01T00:00:00Z"  # Go's zero time: what Alertmanager sends for a firing alert


def labels_of(message: Message) -> dict[str, str]:
    if message.incident_id is None:  # e.g. a broken channel: one alert per kind of message
        labels = {"alertname": "Schoolops" + "".join(word.title() for word in message.kind.value.split("_"))}
    else:
        labels = {"alertname": "SchoolopsIncident", "incident": str(message.incident_id)}
    if message.severity is not None:
        labels["severity"] = message.severity.label
    return labels


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256("\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items())).encode()).hexdigest()[:16]


class AlertmanagerNotifier:
    kind: ClassVar[str] = "alertmanager"

    def __init__(self, config: AlertmanagerChannel, *, clock: Callable[[], float] = time.time) -> None:
        self.id = config.id
        self.max_per_minute = config.max_per_minute
        self._url = config.url
        self._clock = clock
        self._http = HttpEndpoint(config.id, config.timeout)

    @classmethod
    def from_config(cls, config: AlertmanagerChannel, secret: Callable[[str], str]) -> AlertmanagerNotifier:
        return cls(config)

    def payload(self, message: Message, recipient: Recipient, now: float) -> dict[str, object]:
        status = "resolved" if message.kind is MessageKind.SUMMARY else "firing"
        labels = labels_of(message)
        annotations = {"summary": message.subject, "description": message.text, "kind": message.kind.value,
                       "language": message.language.value}
        if message.ack_url:
            annotations["ack_url"] = message.ack_url
        if recipient.person:
            annotations["recipient"] = recipient.person
        origin = urlsplit(message.ack_url) if message.ack_url else None
        group = {"alertname": labels["alertname"], **({"incident": labels["incident"]} if "incident" in labels else {})}
        alert = {"status": status, "labels": labels, "annotations": annotations, "startsAt": rfc3339(now),
                 "endsAt": rfc3339(now) if status == "resolved" else _NOT_ENDED, "generatorURL": "",
                 "fingerprint": fingerprint(labels)}
        return {
            "version": "4",
            "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": self.id,
            "groupLabels": group,
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": f"{origin.scheme}://{origin.netloc}" if origin else "",
            "alerts": [alert],
        }

    async def send(self, message: Message, recipient: Recipient) -> None:
        await self._http.post(self._url, msgspec.json.encode(self.payload(message, recipient, self._clock())))

    async def close(self) -> None:
        await self._http.close()
