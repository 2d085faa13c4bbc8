"""The notifiers, one module per kind, and the explicit registry that maps a channel's kind to its class.

Each notifier satisfies ``collector.notify.model.Channel`` and also has ``from_config(config, secret)``
and ``async close()``. Adding a kind: a config struct in ``config.py``, a module here, a line in REGISTRY.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector import CollectorError
from collector.notify.channels.alertmanager import AlertmanagerNotifier
from collector.notify.channels.config import ChannelConfig
from collector.notify.channels.dingtalk import DingtalkNotifier
from collector.notify.channels.email import EmailNotifier
from collector.notify.channels.webhook import WebhookNotifier
from collector.notify.channels.wecom import WecomNotifier
from collector.notify.model import Channel

REGISTRY: dict[str, type] = {
    "email": EmailNotifier,
    "wecom": WecomNotifier,
    "dingtalk": DingtalkNotifier,
    "webhook": WebhookNotifier,
    "alertmanager": AlertmanagerNotifier,
}


def build_channel(config: ChannelConfig, secret: Callable[[str], str]) -> Channel:
    """The notifier for one configured channel, its secrets read now through ``secret(name)``.

    ``secret`` raises KeyError for a secret that is not stored; that becomes a CollectorError naming the
    channel and the secret (never its value), so start-up stops with a message that says what to do.
    """

    def resolve(name: str) -> str:
        try:
            return secret(name)
        except KeyError:
            raise CollectorError(f"channel {config.id!r} needs the secret {name!r}, which is not stored: "
                                 f"run `schoolops secret set {name}`") from None

    notifier: Any = REGISTRY[str(type(config).__struct_config__.tag)]
    channel: Channel = notifier.from_config(config, resolve)
    return channel
