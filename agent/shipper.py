"""Deliver one report to the collector over HTTP(S) and say what the answer means for the spool.

Standard library only (http.client + ssl): the agent stays small. The collector's certificate is
verified against the configured CA file, or the system's store when none is set.
"""

from __future__ import annotations

import enum
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.config import CollectorConfig


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # 2xx: remove from the spool
    RETRY = "retry"  # collector unreachable, 5xx, 429: keep, back off, try again
    REFUSED = "refused"  # 401/403: keep (a fixed token on reload sends them), back off long
    REJECTED = "rejected"  # other 4xx: this report will never be accepted; set it aside


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    status: int | None
    reason: str
    retry_after: float | None = None


class Shipper:
    def __init__(self, config: CollectorConfig, token: str) -> None:
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path.rstrip("/") or "") + "/api/v1/reports"
        self._timeout = float(config.timeout)
        self._token = token
        self._context: ssl.SSLContext | None = None
        if self._https:
            self._context = ssl.create_default_context(cafile=config.ca_file)
        self._conn: http.client.HTTPConnection | None = None
        self._trust = f"the CA in {config.ca_file}" if config.ca_file else "the system's CA store"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
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
        except ssl.SSLCertVerificationError as exc:
            self.close()
            return Answer(
                Outcome.RETRY, None,
                f"collector certificate does not verify against {self._trust}: {exc.verify_message}; nothing sent",
            )
        except ssl.SSLError as exc:
            self.close()
            return Answer(Outcome.RETRY, None, f"TLS error: {exc.reason or exc}")
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            self.close()
            return Answer(Outcome.RETRY, None, f"collector unreachable: {exc.__class__.__name__}: {exc}")
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


def _reason(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        return str(data.get("reason") or data.get("status") or "")[:500]
    return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
