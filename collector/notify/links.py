"""Signed one-click acknowledgement links: ``<payload>.<signature>``, both base64url without padding.

The payload is compact JSON naming the incident, the person, a nonce and the expiry; the signature
is HMAC-SHA256 over the encoded payload with the collector's link key, compared in constant time.
Changing any byte, using another key or cutting the token short makes ``verify_token`` refuse it.
A valid signature proves the collector issued the link; single use is the store's job (the caller
records each nonce when it makes a link and marks it used when the link is used).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from collector import CollectorError

_PART = re.compile(r"[A-Za-z0-9_-]+")
_SIGNATURE_LENGTH = hashlib.sha256().digest_size
_MAX_TOKEN = 2048  # far above any link this module makes; refuse absurd input before decoding it


class LinkProblem(enum.StrEnum):
    MALFORMED = "malformed"  # not a token this module makes, or cut short
    ALTERED = "altered"  # the signature does not match: changed, or signed with another key
    EXPIRED = "expired"


class LinkError(CollectorError):
    """A link that cannot be used; ``reason`` says why in words for the person who clicked it."""

    def __init__(self, problem: LinkProblem, reason: str) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    incident_id: int
    person: str
    nonce: str
    expires_at: float


def new_nonce() -> str:
    """A fresh random nonce (the only impure function here)."""
    return secrets.token_urlsafe(16)


def make_token(key: bytes, *, incident_id: int, person: str, nonce: str, expires_at: float) -> str:
    """A URL-safe token for ``person`` to acknowledge ``incident_id`` until ``expires_at``."""
    _check_key(key)
    claims = LinkClaims(incident_id=incident_id, person=person, nonce=nonce, expires_at=expires_at)
    if _invalid(claims):
        raise ValueError(f"cannot make a link for {claims!r}: {_invalid(claims)}")
    body = json.dumps({"i": incident_id, "p": person, "n": nonce, "e": expires_at},
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    payload = _encode(body)
    return f"{payload}.{_encode(_sign(key, payload))}"


def verify_token(key: bytes, token: str, now: float) -> LinkClaims:
    """The claims of a genuine, unexpired token; raises LinkError (malformed, altered, expired) otherwise."""
    _check_key(key)
    payload, signature = _split(token)
    if not hmac.compare_digest(_sign(key, payload), signature):
        raise _altered()
    claims = _claims(_decode(payload))  # signed by us: only a bug of ours could make this fail
    if now >= claims.expires_at:
        raise LinkError(LinkProblem.EXPIRED, f"this link expired at {_clock(claims.expires_at)}: "
                                             "acknowledge the incident in schoolops instead")
    return claims


def _split(token: str) -> tuple[str, bytes]:
    parts = token.split(".") if len(token) <= _MAX_TOKEN else []
    if len(parts) != 2 or not all(_PART.fullmatch(part) for part in parts):
        raise _malformed()
    signature = _decode(parts[1])
    if len(signature) != _SIGNATURE_LENGTH:
        raise _malformed()
    if _encode(signature) != parts[1]:  # spare bits of the last character set: not a token we made
        raise _altered()
    return parts[0], signature


def _claims(body: bytes) -> LinkClaims:
    try:
        data = json.loads(body)
        claims = LinkClaims(incident_id=data["i"], person=data["p"], nonce=data["n"], expires_at=data["e"])
    except (ValueError, KeyError, TypeError):
        raise _malformed() from None
    if _invalid(claims):
        raise _malformed()
    return claims


def _invalid(claims: LinkClaims) -> str | None:
    if type(claims.incident_id) is not int or claims.incident_id < 1:
        return "the incident id must be a positive integer"
    if not isinstance(claims.person, str) or not claims.person:
        return "the person must be a non-empty string"
    if not isinstance(claims.nonce, str) or not claims.nonce:
        return "the nonce must be a non-empty string"
    if isinstance(claims.expires_at, bool) or not isinstance(claims.expires_at, (int, float)) \
            or not math.isfinite(claims.expires_at):
        return "the expiry must be a finite number"
    return None


def _altered() -> LinkError:
    return LinkError(LinkProblem.ALTERED,
                     "this link has been altered (or was made by another collector): use the latest message")


def _malformed() -> LinkError:
    return LinkError(LinkProblem.MALFORMED, "this link is incomplete or damaged: open the whole link from the message")


def _check_key(key: bytes) -> None:
    if len(key) < 16:
        raise ValueError("the link key must be at least 16 bytes (32 random bytes recommended)")


def _sign(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed() from None


def _clock(at: float) -> str:
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC on %Y-%m-%d")
    except (OverflowError, OSError, ValueError):  # outside the calendar: say the number
        return f"unix time {at:.0f}"
