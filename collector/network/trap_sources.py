"""Who may send SNMP traps to the :class:`~collector.network.trap_receiver.TrapReceiver`: a
:class:`TrapSource` per device (its asset, communities, SNMPv3 users and engine ID), built from the
device's polling settings, and the :class:`TrapUser` entries with their resolved keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pysnmp.entity import config as snmp_config

from collector.network.config import SnmpConfig
from collector.network.traps import TrapError

_AUTH = {"MD5": snmp_config.USM_AUTH_HMAC96_MD5, "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
         "SHA224": snmp_config.USM_AUTH_HMAC128_SHA224, "SHA256": snmp_config.USM_AUTH_HMAC192_SHA256,
         "SHA384": snmp_config.USM_AUTH_HMAC256_SHA384, "SHA512": snmp_config.USM_AUTH_HMAC384_SHA512}
_PRIV = {("none", ""): snmp_config.USM_PRIV_NONE, ("DES", ""): snmp_config.USM_PRIV_CBC56_DES,
         ("AES", ""): snmp_config.USM_PRIV_CFB128_AES,
         ("AES192", "blumenthal"): snmp_config.USM_PRIV_CFB192_AES_BLUMENTHAL,
         ("AES256", "blumenthal"): snmp_config.USM_PRIV_CFB256_AES_BLUMENTHAL,
         ("AES192", "reeder"): snmp_config.USM_PRIV_CFB192_AES, ("AES256", "reeder"): snmp_config.USM_PRIV_CFB256_AES}


@dataclass(frozen=True)
class TrapUser:
    """An SNMPv3 (USM) user a source may send as; keys are resolved secrets, kept out of repr."""

    name: str
    auth: str | None = None  # MD5, SHA, SHA224, SHA256, SHA384, SHA512
    auth_key: str | None = field(default=None, repr=False)
    priv: str = "none"  # none, DES, AES, AES192, AES256
    priv_key: str | None = field(default=None, repr=False)
    aes_variant: str = "blumenthal"  # AES192/256 key extension: Net-SNMP blumenthal, Cisco reeder

    def __post_init__(self) -> None:
        self.protocols()
        if (self.auth is not None and not self.auth_key) or (self.priv != "none" and (self.auth is None or not self.priv_key)):
            raise TrapError(f"v3 user {self.name!r}: auth needs auth_key; priv needs auth and priv_key")

    @property
    def level(self) -> int:
        """The least security level accepted from this user: 1 noAuthNoPriv, 2 authNoPriv, 3 authPriv."""
        return 1 if self.auth is None else 2 if self.priv == "none" else 3

    def protocols(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        variant = self.aes_variant if self.priv in ("AES192", "AES256") else ""
        if (self.auth is not None and self.auth not in _AUTH) or (self.priv, variant) not in _PRIV:
            raise TrapError(f"v3 user {self.name!r}: unsupported auth {self.auth!r} / priv {self.priv!r} ({variant or '-'})")
        return _AUTH[self.auth] if self.auth else snmp_config.USM_AUTH_NONE, _PRIV[(self.priv, variant)]


@dataclass(frozen=True)
class TrapSource:
    """A device allowed to send traps: its asset, communities (label → community), v3 users and,
    for v3 TRAPs, its snmpEngineID."""

    asset: str
    communities: Mapping[str, str] = field(default_factory=dict, repr=False)
    users: tuple[TrapUser, ...] = ()
    engine_id: bytes | None = None

    @classmethod
    def from_snmp_config(cls, asset: str, snmp: SnmpConfig, secret: Callable[[str], str],
                         *, engine_id: str | bytes | None = None) -> TrapSource:
        """From a device's polling settings; ``secret(name)`` resolves a secret's name to its value."""
        engine = parse_engine_id(engine_id) if isinstance(engine_id, str) else engine_id
        if snmp.version == "2c":
            assert snmp.community_secret is not None
            return cls(asset, {snmp.community_secret: secret(snmp.community_secret)}, engine_id=engine)
        assert snmp.user is not None
        user = TrapUser(snmp.user, snmp.auth, secret(snmp.auth_secret) if snmp.auth_secret else None, snmp.priv,
                        secret(snmp.priv_secret) if snmp.priv_secret else None, snmp.aes_variant)
        return cls(asset, users=(user,), engine_id=engine)


def parse_engine_id(text: str) -> bytes:
    """An snmpEngineID written in hex ("0x80001f88…", "80:00:1f:88…"): 5 to 32 octets (RFC 3411)."""
    digits = text.strip().removeprefix("0x").removeprefix("0X").replace(":", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"engine_id: {text!r} is not hex") from None
    if not 5 <= len(value) <= 32:
        raise ValueError(f"engine_id: {len(value)} octets, an SNMP engine ID has 5 to 32")
    return value
