"""Signed one-click acknowledgement links: a genuine link round-trips; any change, another key, a cut or expiry fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import CollectorError
from collector.notify.links import (
    LinkClaims,
    LinkError,
    LinkProblem,
    make_token,
    new_nonce,
    verify_token,
)

KEY = b"k" * 32
NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC).timestamp()
EXPIRES = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).timestamp()
CLAIMS = LinkClaims(incident_id=42, person="li.wei", nonce="n0nce-AbC_123", expires_at=EXPIRES)
ALPHABET = string.ascii_letters + string.digits + "-_"


def token(key: bytes = KEY, **changes: object) -> str:
    fields = {"incident_id": CLAIMS.incident_id, "person": CLAIMS.person, "nonce": CLAIMS.nonce,
              "expires_at": CLAIMS.expires_at} | changes
    return make_token(key, **fields)  # type: ignore[arg-type]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(text: str, key: bytes = KEY, now: float = NOW) -> LinkError:
    with pytest.raises(LinkError) as caught:
        verify_token(key, text, now)
    assert isinstance(caught.value, CollectorError) and str(caught.value) == caught.value.reason
    return caught.value


def test_round_trip() -> None:
    text = token()
    assert verify_token(KEY, text, NOW) == CLAIMS
    assert set(text) <= set(ALPHABET + ".")  # URL-safe as it is: no quoting needed in a link


def test_each_link_differs_with_its_nonce() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) >= 22 and set(n) <= set(ALPHABET) for n in nonces)
    assert len({token(nonce=n) for n in nonces}) == 100


def test_changing_any_character_is_refused_as_altered() -> None:
    text = token()
    for i, char in enumerate(text):
        if char == ".":
            continue
        for other in (ALPHABET[(ALPHABET.index(char) + 1) % 64], ALPHABET[(ALPHABET.index(char) + 33) % 64]):
            error = refused(text[:i] + other + text[i + 1:])
            assert error.problem is LinkProblem.ALTERED, (i, other)
            assert error.reason.startswith("this link has been altered")


@pytest.mark.parametrize("change", [{"i": 43}, {"e": EXPIRES + 86400}, {"p": "zhang.san"}, {"n": "other"}])
def test_a_rewritten_payload_with_the_old_signature_is_refused(change: dict[str, object]) -> None:
    payload, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==")) | change
    forged = b64(json.dumps(claims, separators=(",", ":")).encode()) + "." + signature
    assert refused(forged).problem is LinkProblem.ALTERED


def test_another_key_is_refused() -> None:
    assert refused(token(), key=b"another key, 32 bytes long......").problem is LinkProblem.ALTERED
    assert refused(token(key=b"another key, 32 bytes long......")).problem is LinkProblem.ALTERED


def test_a_cut_link_is_refused() -> None:
    text = token()
    for end in range(len(text)):
        error = refused(text[:end])
        assert error.problem in (LinkProblem.MALFORMED, LinkProblem.ALTERED), end
    assert refused(text[:-1]).reason.startswith("this link is incomplete")
    assert refused(text.split(".")[0]).problem is LinkProblem.MALFORMED


@pytest.mark.parametrize("text", ["", ".", "abc", "a.b.c", token() + ".", "." + token(), token() + " ",
                                  token().replace(".", "%2E"), token() + "=", "é." + token().split(".")[1],
                                  "A" * 5000 + "." + token().split(".")[1]])
def test_malformed(text: str) -> None:
    assert refused(text).problem is LinkProblem.MALFORMED


def test_a_correctly_signed_payload_that_is_not_ours_is_refused() -> None:
    for body in [b"not json", b"[]", b'{"i":1}', b'{"i":"1","p":"a","n":"b","e":1.0}', b'{"i":1,"p":"","n":"b","e":1}',
                 b'{"i":true,"p":"a","n":"b","e":1}', b'{"i":1,"p":"a","n":"b","e":"soon"}']:
        payload = b64(body)
        forged = payload + "." + b64(hmac.new(KEY, payload.encode(), hashlib.sha256).digest())
        assert refused(forged, now=0).problem is LinkProblem.MALFORMED, body


def test_expired() -> None:
    assert verify_token(KEY, token(), EXPIRES - 1) == CLAIMS
    error = refused(token(), now=EXPIRES)
    assert error.problem is LinkProblem.EXPIRED
    assert error.reason.startswith("this link expired at 14:00 UTC on 2024-05-01")
    assert refused(token(), now=EXPIRES + 86400).problem is LinkProblem.EXPIRED


def test_a_link_cannot_be_made_from_a_weak_key_or_bad_claims() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        token(key=b"short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify_token(b"", token(), NOW)
    bads: list[dict[str, object]] = [{"incident_id": 0}, {"person": ""}, {"nonce": ""}, {"expires_at": float("inf")}]
    for bad in bads:
        with pytest.raises(ValueError, match="cannot make a link"):
            token(KEY, **bad)


@settings(max_examples=300)
@given(st.integers(1, 2**53), st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64),
       st.floats(0, 4e9, allow_nan=False))
def test_any_claims_round_trip(incident_id: int, person: str, nonce: str, expires_at: float) -> None:
    claims = LinkClaims(incident_id=incident_id, person=person, nonce=nonce, expires_at=expires_at)
    text = make_token(KEY, incident_id=incident_id, person=person, nonce=nonce, expires_at=expires_at)
    assert verify_token(KEY, text, expires_at - 1) == claims
    assert refused(text, now=expires_at).problem is LinkProblem.EXPIRED


@settings(max_examples=300)
@given(st.text(max_size=200) | st.from_regex(r"\A[A-Za-z0-9_-]{0,120}\.[A-Za-z0-9_-]{0,60}\Z"))
def test_arbitrary_text_is_refused_with_a_link_error(text: str) -> None:
    refused(text)
