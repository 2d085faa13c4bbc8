"""Channel definitions as they appear in the on-call file (``channels:``), one tagged struct per kind.

Secrets (SMTP passwords, robot keys, signing secrets) are never written here: each is named
(``password_secret: smtp``) and read from the collector's encrypted secret store
(``schoolops secret set NAME``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from msgspec import Meta, Struct

from schoolops.units import Seconds

ChannelId = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}\Z")]
SecretName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_.-]{0,63}\Z")]


def _check_url(url: str, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field}: expected an http:// or https:// URL, got {url!r}")


class _Channel(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, tag_field="kind"):
    id: ChannelId
    max_per_minute: Annotated[int, Meta(ge=1, le=10_000)] = 20
    timeout: Seconds = Seconds(10)


class EmailChannel(_Channel, tag="email", kw_only=True, frozen=True):
    host: Annotated[str, Meta(min_length=1, max_length=255)]
    sender: Annotated[str, Meta(pattern=r"^[^@\s]+@[^@\s]+\Z")]  # the From: address
    port: Annotated[int, Meta(ge=1, le=65535)] = 587
    security: Annotated[str, Meta(pattern=r"^(starttls|tls|none)\Z")] = "starttls"  # tls = implicit TLS (465)
    username: str | None = None
    password_secret: SecretName | None = None
    ca_file: str | None = None  # verify the server against this CA instead of the system store
    max_per_minute: Annotated[int, Meta(ge=1, le=10_000)] = 60

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password_secret is None):
            raise ValueError("username and password_secret go together")


class WecomChannel(_Channel, tag="wecom", kw_only=True, frozen=True):
    """A WeCom (企業微信) group robot. The webhook URL carries its key, so the URL itself is a secret."""

    url_secret: SecretName  # the full webhook URL, e.g. https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…


class DingtalkChannel(_Channel, tag="dingtalk", kw_only=True, frozen=True):
    """A DingTalk (釘釘) group robot with signing: timestamp + "\\n" + secret, HMAC-SHA256, base64."""

    url_secret: SecretName  # the webhook URL with its access_token
    signing_secret: SecretName  # the robot's SEC… signing secret


class WebhookChannel(_Channel, tag="webhook", kw_only=True, frozen=True):
    """A generic JSON webhook (an SMS gateway, anything): the body is signed with HMAC-SHA256."""

    url: str
    signing_secret: SecretName | None = None
    signature_header: Annotated[str, Meta(pattern=r"^[A-Za-z0-9-]{1,64}\Z")] = "X-Schoolops-Signature"

    def __post_init__(self) -> None:
        _check_url(self.url, "url")


class AlertmanagerChannel(_Channel, tag="alertmanager", kw_only=True, frozen=True):
    """Alertmanager's webhook payload (version 4), for teams that already route with it."""

    url: str

    def __post_init__(self) -> None:
        _check_url(self.url, "url")


ChannelConfig = EmailChannel | WecomChannel | DingtalkChannel | WebhookChannel | AlertmanagerChannel
