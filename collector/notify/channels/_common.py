"""What the notifiers share: the localized acknowledge line, URL redaction, and one HTTP endpoint per
channel (a lazily created aiohttp session, a POST, the status classified into NotifyError)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import msgspec
from yarl import URL

from collector.notify.model import Language, Message, NotifyError

MOBILE = re.compile(r"^\+?\d{6,15}\Z")  # a recipient address that is a phone number, not a chat user id
_ACK_LABEL = {Language.ZH_CN: "点击确认", Language.ZH_TW: "點擊確認", Language.EN: "Acknowledge"}
_MAX_BODY = 64 * 1024  # what we read of an answer: robots answer a few bytes of JSON


def ack_label(message: Message) -> str:
    return _ACK_LABEL[message.language]


def redact_url(url: str | URL) -> str:
    """scheme://host/path?name=*** — robot keys and tokens live in the query (and sometimes the userinfo)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def rfc3339(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def truncate_utf8(text: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary."""
    data = text.encode()
    return text if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "…"


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None  # the HTTP-date form is left to the dispatcher's backoff


class HttpEndpoint:
    """One aiohttp session for one channel, created inside the running loop on first use."""

    def __init__(self, channel_id: str, timeout: float) -> None:
        self.channel_id = channel_id
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str | URL, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """POST ``body`` as JSON; return the answer's body on 2xx, else raise NotifyError.

        408, 429 and 5xx are transient (with Retry-After), other statuses permanent. The message names
        the URL with its query redacted, and the library's exception is not chained: it may quote the URL.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False)
        where = f"{self.channel_id}: {redact_url(url)}"
        try:
            async with self._session.post(url, data=body, allow_redirects=False,
                                          headers={"Content-Type": "application/json", **(headers or {})}) as resp:
                answer = await resp.content.read(_MAX_BODY)
                status, answer_headers = resp.status, resp.headers
        except TimeoutError:
            raise NotifyError(f"{where} did not answer within {self.timeout:g}s", permanent=False) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise NotifyError(f"{where}: TLS certificate rejected ({exc.certificate_error})", permanent=True) from None
        except aiohttp.ClientConnectorError as exc:
            raise NotifyError(f"{where}: cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})",
                              permanent=False) from None
        except aiohttp.InvalidURL:
            raise NotifyError(f"{where}: not a valid URL", permanent=True) from None
        except aiohttp.ClientError as exc:
            raise NotifyError(f"{where}: {type(exc).__name__}", permanent=False) from None
        if 200 <= status < 300:
            return answer
        transient = status in (408, 429) or status >= 500
        raise NotifyError(f"{where} answered HTTP {status}", permanent=not transient,
                          retry_after=retry_after(answer_headers) if transient else None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class RobotAnswer(msgspec.Struct):
    """What WeCom and DingTalk robots answer with HTTP 200: errcode 0, or an error code and message."""

    errcode: int = -1
    errmsg: str = ""


def check_robot_answer(channel_id: str, url: str | URL, body: bytes, transient: Mapping[int, float | None]) -> None:
    """Raise NotifyError unless the robot answered errcode 0; ``transient`` maps retryable codes to a Retry-After."""
    try:
        answer = msgspec.json.decode(body, type=RobotAnswer)
    except msgspec.DecodeError:
        raise NotifyError(f"{channel_id}: {redact_url(url)} answered HTTP 200 without a robot's JSON: "
                          "is the URL a robot webhook?", permanent=True) from None
    if answer.errcode == 0:
        return
    errmsg = answer.errmsg[:200]
    for _, value in parse_qsl(urlsplit(str(url)).query):
        errmsg = errmsg.replace(value, "***") if len(value) >= 8 else errmsg  # should the robot quote its key
    raise NotifyError(f"{channel_id}: {redact_url(url)} answered errcode {answer.errcode} ({errmsg})",
                      permanent=answer.errcode not in transient, retry_after=transient.get(answer.errcode))
