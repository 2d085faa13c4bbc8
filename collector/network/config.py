"""How network devices and services are described in the inventory: SNMP, CLI and SSH access, probes.

Credentials are never written here: each is the NAME of a secret in the collector's encrypted
store (``schoolops secret set NAME``).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from schoolops.units import Seconds

SecretName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_.-]{0,63}\Z")]
Host = Annotated[str, Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]_-]+\Z")]
Strict = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}

AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("none", "DES", "AES", "AES192", "AES256")


class SnmpConfig(Struct, **Strict):
    version: Annotated[str, Meta(pattern=r"^(2c|3)\Z")] = "2c"
    port: Annotated[int, Meta(ge=1, le=65535)] = 161
    community_secret: SecretName | None = None  # v2c
    user: Annotated[str, Meta(min_length=1, max_length=32)] | None = None  # v3 (USM)
    auth: Annotated[str, Meta(pattern=r"^(MD5|SHA|SHA224|SHA256|SHA384|SHA512)\Z")] | None = None
    auth_secret: SecretName | None = None
    priv: Annotated[str, Meta(pattern=r"^(none|DES|AES|AES192|AES256)\Z")] = "none"
    priv_secret: SecretName | None = None
    # AES-192/256 key extension: Net-SNMP uses Blumenthal, Cisco uses Reeder; the device decides
    aes_variant: Annotated[str, Meta(pattern=r"^(blumenthal|reeder)\Z")] = "blumenthal"
    # v3 TRAPs are signed with the device's own engine ID: hex, 5-32 octets (informs need none)
    engine_id: Annotated[str, Meta(pattern=r"^(0x)?[0-9A-Fa-f:]{10,95}\Z")] | None = None
    interval: Seconds = 60  # type: ignore[assignment]
    timeout: Seconds = 2  # type: ignore[assignment]
    retries: Annotated[int, Meta(ge=0, le=5)] = 1
    max_repetitions: Annotated[int, Meta(ge=1, le=100)] = 25

    def __post_init__(self) -> None:
        if self.version == "2c":
            if self.community_secret is None:
                raise ValueError("community_secret: SNMP v2c needs the community (as a secret name)")
            if self.user is not None:
                raise ValueError("user: a v3 user makes no sense with version 2c")
            return
        if self.user is None:
            raise ValueError("user: SNMP v3 needs a USM user")
        if (self.auth is None) != (self.auth_secret is None):
            raise ValueError("auth_secret: auth and auth_secret go together")
        if self.priv != "none" and (self.auth is None or self.priv_secret is None):
            raise ValueError("priv_secret: privacy needs authentication and a priv_secret")
        if self.interval < 5 or self.timeout <= 0:
            raise ValueError("interval: at least 5s, and timeout must be positive")


class CliConfig(Struct, **Strict):
    """SSH command-line access through netmiko. Host keys are always verified against known_hosts."""

    device_type: Annotated[str, Meta(pattern=r"^(cisco_ios|cisco_xe|cisco_nxos|huawei|huawei_vrpv8|hp_comware|h3c_comware|ruijie_os|linux)\Z")]
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    known_hosts: str  # an OpenSSH known_hosts file holding this device's key
    port: Annotated[int, Meta(ge=1, le=65535)] = 22
    password_secret: SecretName | None = None
    key_file: str | None = None  # a private key file readable only by the collector
    enable_secret: SecretName | None = None
    backup: bool = True  # keep its running configuration in the config-backup repository
    backup_interval: Seconds = 86400  # type: ignore[assignment]
    timeout: Seconds = 60  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.password_secret is None and self.key_file is None:
            raise ValueError("password_secret: give password_secret or key_file")


class SshConfig(Struct, **Strict):
    """SSH access to a server for runbooks: key auth from the credential store, host key verified."""

    username: Annotated[str, Meta(min_length=1, max_length=64)]
    key_secret: SecretName  # `schoolops secret set NAME < keyfile` stores the private key
    known_hosts: str  # an OpenSSH known_hosts file holding this server's key
    port: Annotated[int, Meta(ge=1, le=65535)] = 22
    passphrase_secret: SecretName | None = None


class ProbeConfig(Struct, **Strict):
    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_.-]{0,63}\Z")]
    kind: Annotated[str, Meta(pattern=r"^(icmp|tcp|http|tls|dns)\Z")]
    target: Annotated[str, Meta(min_length=1, max_length=1024)]  # host (icmp), host:port (tcp, tls), URL (http), name (dns)
    interval: Seconds = 60  # type: ignore[assignment]
    timeout: Seconds = 10  # type: ignore[assignment]
    expect_status: Annotated[int, Meta(ge=100, le=599)] | None = None  # http: default any 2xx/3xx
    body_contains: Annotated[str, Meta(max_length=1024)] | None = None  # http
    ca_file: str | None = None  # http/tls: verify against this CA instead of the system store
    dns_server: Host | None = None  # dns: ask this server (default: the system resolver)
    expect_addresses: list[str] = []  # dns: the answer must contain these

    def __post_init__(self) -> None:
        if self.kind in ("tcp", "tls") and ":" not in self.target.rsplit("]", 1)[-1]:
            raise ValueError(f"target: a {self.kind} probe needs host:port, got {self.target!r}")
        if self.kind == "http" and not self.target.startswith(("http://", "https://")):
            raise ValueError(f"target: an http probe needs an http:// or https:// URL, got {self.target!r}")
        if self.timeout <= 0 or self.interval < 1:
            raise ValueError("interval: at least 1s, and timeout must be positive")
