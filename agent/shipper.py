"""Deliver one report to the collector over HTTP(S) and say what the answer means for the spool.

The standard library's http.client, and ssl for an https collector: the agent stays small. The
collector's certificate is verified against the configured CA file, or the system's store when none
is set.

ssl is imported only when the collector's URL is https. http.client imports it for its
HTTPSConnection alone, and with it OpenSSL's libcrypto, which costs an agent that sends plain HTTP
about 4 MiB of resident memory (a fifth of all it holds). So when nothing in the process has loaded
ssl yet, http.client is imported without it, and TLS connections are made by
:class:`_TLSConnection`, which does what HTTPSConnection does with a given context.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from agent.config import CollectorConfig

if TYPE_CHECKING:
    import ssl

if "http.client" not in sys.modules and "ssl" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]  # so http.client's `import ssl` fails, and it skips TLS
    try:
        import http.client
    finally:
        del sys.modules["ssl"]
import http.client  # binds the name (and imports it, when the guard above did not apply)


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # 2xx: remove from the spool
    RETRY = "retry"  # collector unreachable, 5xx, 429: keep, back off, try again
    REFUSED = "refused"  # 401/403: keep (a fixed token on reload sends them), back off long
    REJECTED = "rejected"  # other 4xx: this report will never be accepted; set it aside


class Answer(msgspec.Struct, frozen=True):
    outcome: Outcome
    status: int | None
    reason: str
    retry_after: float | None = None


class _TLSConnection(http.client.HTTPConnection):
    """What http.client's HTTPSConnection does with a given context: TLS over the connected socket."""

    default_port = 443

    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class Shipper:
    def __init__(self, config: CollectorConfig, token: str) -> None:
        parts = urlsplit(config.url)
        self._host = parts.hostname or ""
        self._timeout = float(config.timeout)
        self._token = token
        self._path = (parts.path.rstrip("/") or "") + "/api/v1/reports"
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            import ssl  # only for an https collector (see the module's doc)

            self._context = ssl.create_default_context(cafile=config.ca_file)
        self._port = parts.port or (443 if self._context is not None else 80)
        self._conn: http.client.HTTPConnection | None = None
        self._trust = f"the CA in {config.ca_file}" if config.ca_file else "the system's CA store"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._context is not None:
                self._conn = _TLSConnection(self._host, self._port, self._timeout, self._context)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(self, body: bytes) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": "schoolops-agent",
        }
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read(64 * 1024)
        except (OSError, http.client.HTTPException) as exc:  # timeouts and ssl's errors are OSErrors too
            self.close()
            return Answer(Outcome.RETRY, None, self._failure(exc))
        status = response.status
        if response.will_close:
            self.close()
        reason = _reason(payload) or response.reason
        if 200 <= status < 300:
            return Answer(Outcome.DELIVERED, status, reason)
        if status in (401, 403):
            return Answer(Outcome.REFUSED, status, reason)
        if status in (408, 429) or status >= 500:
            return Answer(Outcome.RETRY, status, reason, _retry_after(response.getheader("Retry-After")))
        return Answer(Outcome.REJECTED, status, reason)

    def _failure(self, exc: Exception) -> str:
        if self._context is not None:  # an https collector: ssl is loaded
            import ssl

            if isinstance(exc, ssl.SSLCertVerificationError):
                return (f"collector certificate does not verify against {self._trust}: {exc.verify_message}; "
                        "nothing sent")
            if isinstance(exc, ssl.SSLError):
                return f"TLS error: {exc.reason or exc}"
        return f"collector unreachable: {exc.__class__.__name__}: {exc}"


def _reason(payload: bytes) -> str:
    try:
        data = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return payload[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        return str(data.get("reason") or data.get("status") or "")[:500]
    return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
