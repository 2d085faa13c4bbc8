"""Who may send traps: sources from a device's polling settings, engine IDs, v3 users (pure)."""

from __future__ import annotations

import pytest

from collector.network.config import SnmpConfig
from collector.network.trap_sources import TrapSource, TrapUser, parse_engine_id
from collector.network.traps import TrapError

AUTH, PRIV = "authpass-123", "privpass-123"


def test_source_from_snmp_config_resolves_secrets_and_hides_them() -> None:
    secrets = {"sw.community": "s3cret-community", "sw.auth": "a-key-1234", "sw.priv": "p-key-1234"}
    v2c = TrapSource.from_snmp_config("sw-01", SnmpConfig(version="2c", community_secret="sw.community"), secrets.__getitem__)
    assert v2c.communities == {"sw.community": "s3cret-community"} and v2c.engine_id is None
    v3cfg = SnmpConfig(version="3", user="mon", auth="SHA256", auth_secret="sw.auth", priv="AES256", priv_secret="sw.priv",
                       aes_variant="reeder")
    v3 = TrapSource.from_snmp_config("sw-01", v3cfg, secrets.__getitem__, engine_id="0x80:00:1f:88:04:61:62")
    assert v3.engine_id == bytes.fromhex("80001f8804" + "6162")
    [user] = v3.users
    assert (user.name, user.auth, user.priv, user.aes_variant, user.level) == ("mon", "SHA256", "AES256", "reeder", 3)
    assert not any(secret in repr(v2c) + repr(v3) for secret in secrets.values())


def test_engine_id_parsing() -> None:
    assert parse_engine_id("0x8000000001020304") == bytes.fromhex("8000000001020304")
    for bad in ("zz", "0x0102", "01" * 33):
        with pytest.raises(ValueError, match="engine_id"):
            parse_engine_id(bad)


def test_v3_user_needs_its_keys_and_known_protocols() -> None:
    for bad in (lambda: TrapUser("u", "SHA"), lambda: TrapUser("u", "SHA", AUTH, "AES"),
                lambda: TrapUser("u", None, None, "AES", PRIV), lambda: TrapUser("u", "SHA", AUTH, "AES512", PRIV),
                lambda: TrapUser("u", "SHA", AUTH, "AES256", PRIV, aes_variant="other")):
        with pytest.raises(TrapError, match="v3 user 'u'"):
            bad()
    assert TrapUser("u").level == 1 and TrapUser("u", "MD5", AUTH).level == 2
