"""Agent tokens: ``so_<id>.<secret>``; the collector keeps the id and a hash, never the secret."""

from __future__ import annotations

import dataclasses
import re

import pytest

from collector import tokens


def test_an_issued_token_has_the_documented_shape() -> None:
    issued = tokens.issue("web-01", now=100.0)
    assert re.fullmatch(r"so_[0-9a-f]{12}\.[A-Za-z0-9_-]{43}", issued.token)
    assert issued.record.asset == "web-01"
    assert issued.record.created_at == 100.0
    assert issued.record.revoked_at is None and issued.record.last_used_at is None


def test_parse_splits_an_issued_token_into_its_id_and_secret() -> None:
    issued = tokens.issue("web-01", now=100.0)
    token_id, secret = tokens.parse(issued.token)
    assert token_id == issued.record.id
    assert issued.token == f"so_{token_id}.{secret}"


def test_the_stored_record_does_not_contain_the_secret() -> None:
    issued = tokens.issue("web-01", now=100.0)
    _, secret = tokens.parse(issued.token)
    stored = dataclasses.asdict(issued.record)
    assert secret not in repr(stored)
    assert issued.record.secret_hash != secret
    assert re.fullmatch(r"[0-9a-f]{64}", issued.record.secret_hash)


def test_two_issued_tokens_differ() -> None:
    first, second = tokens.issue("web-01", now=1.0), tokens.issue("web-01", now=1.0)
    assert first.record.id != second.record.id
    assert tokens.parse(first.token)[1] != tokens.parse(second.token)[1]


def test_the_right_secret_verifies() -> None:
    issued = tokens.issue("web-01", now=100.0)
    assert tokens.verify(issued.record, tokens.parse(issued.token)[1]) is True


def test_a_tampered_secret_fails() -> None:
    issued = tokens.issue("web-01", now=100.0)
    _, secret = tokens.parse(issued.token)
    tampered = ("A" if secret[0] != "A" else "B") + secret[1:]
    assert tokens.verify(issued.record, tampered) is False
    assert tokens.verify(issued.record, secret[:-1]) is False
    assert tokens.verify(issued.record, "") is False


def test_another_tokens_secret_fails() -> None:
    mine, theirs = tokens.issue("web-01", now=1.0), tokens.issue("db-01", now=1.0)
    assert tokens.verify(mine.record, tokens.parse(theirs.token)[1]) is False


def test_the_stored_hash_itself_is_not_accepted_as_the_secret() -> None:
    issued = tokens.issue("web-01", now=100.0)
    assert tokens.verify(issued.record, issued.record.secret_hash) is False


def test_a_revoked_token_fails_even_with_the_right_secret() -> None:
    issued = tokens.issue("web-01", now=100.0)
    revoked = dataclasses.replace(issued.record, revoked_at=200.0)
    assert tokens.verify(revoked, tokens.parse(issued.token)[1]) is False


GOOD_SECRET = "A" * 43


@pytest.mark.parametrize(
    "token",
    [
        "",
        "so_",
        "so_0a1b2c3d4e5f",
        "so_0a1b2c3d4e5f.",
        f"0a1b2c3d4e5f.{GOOD_SECRET}",  # no prefix
        f"SO_0a1b2c3d4e5f.{GOOD_SECRET}",
        f"so_0A1B2C3D4E5F.{GOOD_SECRET}",  # the id is lowercase
        f"so_0a1b2c3d4e5.{GOOD_SECRET}",  # 11-character id
        f"so_0a1b2c3d4e5f0.{GOOD_SECRET}",  # 13-character id
        f"so_0a1b2c3d4e5f.{GOOD_SECRET[:-1]}",  # 42-character secret
        f"so_0a1b2c3d4e5f.{GOOD_SECRET}A",  # 44-character secret
        f"so_0a1b2c3d4e5f.{GOOD_SECRET[:-1]}=",  # padding is not urlsafe-unpadded base64
        f"so_0a1b2c3d4e5f.{GOOD_SECRET[:-1]}+",
        f"so_0a1b2c3d4e5f:{GOOD_SECRET}",
        f" so_0a1b2c3d4e5f.{GOOD_SECRET}",
        f"Bearer so_0a1b2c3d4e5f.{GOOD_SECRET}",
    ],
)
def test_malformed_tokens_parse_to_none(token: str) -> None:
    assert tokens.parse(token) is None


def test_a_well_formed_token_parses() -> None:
    assert tokens.parse(f"so_0a1b2c3d4e5f.{GOOD_SECRET}") == ("0a1b2c3d4e5f", GOOD_SECRET)
