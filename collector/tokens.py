"""Agent tokens: ``so_<id>.<secret>``. The collector stores the id and a hash of the secret only.

The secret has 256 bits of entropy, so one SHA-256 is enough (no KDF needed), and the comparison is
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from collector.store import AgentToken

_TOKEN = re.compile(r"^so_(?P<id>[a-z0-9]{12})\.(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedToken:
    record: AgentToken
    token: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(asset: str, now: float) -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = AgentToken(id=token_id, asset=asset, secret_hash=hash_secret(secret), created_at=now)
    return IssuedToken(record=record, token=f"so_{token_id}.{secret}")


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    m = _TOKEN.fullmatch(token)
    return (m.group("id"), m.group("secret")) if m else None


def verify(record: AgentToken, secret: str) -> bool:
    return record.revoked_at is None and hmac.compare_digest(record.secret_hash, hash_secret(secret))
