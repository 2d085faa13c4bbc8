"""SNMP polling of network devices: one poll reads the system group, IF-MIB, HOST-RESOURCES and
ENTITY-SENSOR tables; :class:`~collector.network.snmp_poller.SnmpPoller` polls a fleet on each
device's cadence. :func:`get_values` reads a few objects (a runbook's ``snmp_get`` step).

pysnmp through its native asyncio API, numeric OIDs only (Debian ships no IETF MIB files), bounded
walks. Every pysnmp error is wrapped here in an :class:`SnmpError` naming the device and what to
check; :func:`poll` turns it into ``Device(reachable=False, error=…)`` so a dead device never raises
into the scheduler. The arithmetic (rates, wraps, reboots, units) is pure, in
:mod:`collector.network.counters`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hl
from pysnmp.proto import errind
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from collector import CollectorError
from collector.network import counters
from collector.network.config import SnmpConfig
from collector.network.counters import Column, CounterKey, CounterSample
from schoolops import wire

logger = structlog.get_logger("schoolops.snmp")

SYSTEM = {"descr": "1.3.6.1.2.1.1.1.0", "object_id": "1.3.6.1.2.1.1.2.0",
          "uptime": "1.3.6.1.2.1.1.3.0", "name": "1.3.6.1.2.1.1.5.0"}
IF_TABLE = {"descr": 2, "speed": 5, "admin": 7, "oper": 8, "in_octets": 10, "in_discards": 13,
            "in_errors": 14, "out_octets": 16, "out_discards": 19, "out_errors": 20}
IFX_TABLE = {"name": 1, "hc_in_octets": 6, "hc_out_octets": 10, "high_speed": 15, "alias": 18}
IF_ENTRY, IFX_ENTRY = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_ENTRY = "1.3.6.1.2.1.25.2.3.1"  # .2 type .3 descr .4 allocation units .5 size .6 used
HR_STORAGE_FIXED_DISK = "1.3.6.1.2.1.25.2.1.4"
ENT_SENSOR_ENTRY = "1.3.6.1.2.1.99.1.1.1"  # .1 type .2 scale .3 precision .4 value .5 oper status
ENT_PHYSICAL_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
MAX_ROWS = 4096  # per column; also the wire limit on interfaces
GET_BATCH = 40  # varbinds per GET request
_BETTER = {"in_octets": "hc_in_octets", "out_octets": "hc_out_octets", "speed": "high_speed"}  # ifXTable over ifTable

_AUTH = {"MD5": hl.usmHMACMD5AuthProtocol, "SHA": hl.usmHMACSHAAuthProtocol,
         "SHA224": hl.usmHMAC128SHA224AuthProtocol, "SHA256": hl.usmHMAC192SHA256AuthProtocol,
         "SHA384": hl.usmHMAC256SHA384AuthProtocol, "SHA512": hl.usmHMAC384SHA512AuthProtocol}
_PRIV = {("DES", "blumenthal"): hl.usmDESPrivProtocol, ("DES", "reeder"): hl.usmDESPrivProtocol,
         ("AES", "blumenthal"): hl.usmAesCfb128Protocol, ("AES", "reeder"): hl.usmAesCfb128Protocol,
         ("AES192", "blumenthal"): hl.usmAesBlumenthalCfb192Protocol, ("AES192", "reeder"): hl.usmAesCfb192Protocol,
         ("AES256", "blumenthal"): hl.usmAesBlumenthalCfb256Protocol, ("AES256", "reeder"): hl.usmAesCfb256Protocol}


class SnmpError(CollectorError):
    """A device could not be polled; the message names the device and what to check."""

    result: ClassVar[str] = "error"  # the `result` label of polls_total

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class SnmpTimeout(SnmpError):
    """No answer: the device is down or unreachable, or it silently drops a wrong community / priv key."""

    result = "timeout"


class SnmpAuthenticationError(SnmpError):
    """The device rejected the SNMPv3 user or its keys (wrong digest, unknown user, decryption error)."""

    result = "auth_failure"


class SnmpAuthorizationError(SnmpError):
    """The device authenticated us but its access control refuses the object or security level."""

    result = "access_denied"


class SnmpDeadlineExceeded(SnmpError):
    """The whole poll took longer than the device's interval and was abandoned."""

    result = "deadline_exceeded"


class _InternalError(SnmpError):
    result = "internal_error"


RESULTS = ("ok", *(c.result for c in (SnmpError, SnmpTimeout, SnmpAuthenticationError, SnmpAuthorizationError,
                                      SnmpDeadlineExceeded, _InternalError)))


@dataclass(frozen=True)
class Credentials:
    """v2c community, or v3 USM user with protocols (SnmpConfig names) and keys resolved from secrets."""

    community: str | None = field(default=None, repr=False)
    user: str | None = None
    auth_protocol: str | None = None  # MD5 SHA SHA224 SHA256 SHA384 SHA512
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str = "none"  # none DES AES AES192 AES256
    priv_key: str | None = field(default=None, repr=False)
    aes_variant: str = "blumenthal"  # AES-192/256 key extension: blumenthal (Net-SNMP) | reeder (Cisco)

    def __post_init__(self) -> None:
        if (self.community is None) == (self.user is None):
            raise ValueError("credentials: give a community (v2c) or a user (v3), not both")
        if self.auth_protocol is not None and self.auth_protocol not in _AUTH:
            raise ValueError(f"auth_protocol: {self.auth_protocol!r} is not one of {', '.join(_AUTH)}")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_key: an auth protocol and its key go together")
        if self.priv_protocol != "none" and (self.priv_protocol, self.aes_variant) not in _PRIV:
            raise ValueError(f"priv_protocol: {self.priv_protocol!r}/{self.aes_variant!r} is not supported")
        if self.priv_protocol != "none" and (self.auth_key is None or self.priv_key is None):
            raise ValueError("priv_key: privacy needs authentication and a priv key")
        for name, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key) < 8:
                raise ValueError(f"{name}: an SNMPv3 pass phrase has at least 8 characters (RFC 3414)")

    @classmethod
    def from_config(cls, config: SnmpConfig, secret: Callable[[str], str]) -> Credentials:
        """Resolve the secret names in ``config`` through ``secret(name) -> value``."""
        if config.version == "2c":
            assert config.community_secret is not None  # SnmpConfig guarantees it
            return cls(community=secret(config.community_secret))
        return cls(user=config.user, auth_protocol=config.auth,
                   auth_key=secret(config.auth_secret) if config.auth_secret else None,
                   priv_protocol=config.priv,
                   priv_key=secret(config.priv_secret) if config.priv_secret else None,
                   aes_variant=config.aes_variant)

    def auth_data(self) -> hl.CommunityData | hl.UsmUserData:
        if self.community is not None:
            return hl.CommunityData(self.community, mpModel=1)
        priv = None if self.priv_protocol == "none" else _PRIV[self.priv_protocol, self.aes_variant]
        return hl.UsmUserData(self.user, self.auth_key, self.priv_key,
                              authProtocol=_AUTH[self.auth_protocol] if self.auth_protocol else None,
                              privProtocol=priv)


@dataclass(frozen=True)
class PollState:
    """What one poll leaves for the next: the device's uptime and every counter sample."""

    uptime: float | None = None
    counters: Mapping[CounterKey, CounterSample] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    device: wire.Device
    interfaces: list[wire.Interface] = field(default_factory=list)
    cpu_percent: float | None = None
    storage: list[wire.Filesystem] = field(default_factory=list)
    temperatures: list[wire.Temperature] = field(default_factory=list)
    state: PollState = field(default_factory=PollState)
    error: SnmpError | None = None

    @property
    def result(self) -> str:
        """ok, or the failure's kind: timeout, auth_failure, access_denied, deadline_exceeded, error."""
        return "ok" if self.error is None else self.error.result

    @classmethod
    def failed(cls, error: SnmpError, previous: PollState | None, seconds: float) -> PollResult:
        # keep the previous samples: the first poll after an outage gets the average rate over it
        return cls(device=wire.Device(reachable=False, poll_seconds=seconds, error=str(error)[:4096]),
                   state=previous or PollState(), error=error)


def _python(value: Any) -> int | str:
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", "replace").rstrip("\x00")
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(x) for x in value)
    return int(value)


_NUMERIC_OID = re.compile(r"^[0-9]+(?:\.[0-9]+)+\Z")


def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


class _Session:
    """One poll's conversation with one device; turns pysnmp's error values into SnmpError."""

    def __init__(self, engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
                 now: float) -> None:
        self.engine, self.address, self.config, self.creds = engine, address, config, creds
        self.device = f"{address}:{config.port}"
        self.loop = asyncio.get_running_loop()
        self.started, self.now = self.loop.time(), now
        self.auth: hl.CommunityData | hl.UsmUserData | None = None
        self.target: hl.UdpTransportTarget | hl.Udp6TransportTarget | None = None
        self.context = hl.ContextData()

    def clock(self) -> float:
        """``now`` as the caller gave it, advanced by the time this poll has taken so far."""
        return self.now + (self.loop.time() - self.started)

    async def open(self) -> None:
        host = self.address.strip("[]")
        cls = hl.Udp6TransportTarget if ":" in host else hl.UdpTransportTarget
        try:
            self.auth = self.creds.auth_data()
            self.target = await cls.create((host, self.config.port), timeout=float(self.config.timeout),
                                           retries=self.config.retries)
        except (PySnmpError, PyAsn1Error, OSError) as exc:
            raise SnmpError(self.device, f"cannot set up SNMP to {self.address!r}: {exc}") from exc

    def error(self, indication: Any, status: Any, oid: str) -> SnmpError:
        d, creds, cfg = self.device, self.creds, self.config
        who = f"community (secret {cfg.community_secret})" if creds.community is not None else f"user {creds.user!r}"
        if isinstance(indication, errind.RequestTimedOut):
            tries = f"{cfg.timeout:g}s x {cfg.retries + 1} tries"
            if creds.community is not None:
                return SnmpTimeout(d, f"no answer within {tries}: check the device is up and reachable on "
                                      f"UDP {cfg.port}, SNMP is enabled, and the community is right "
                                      f"(a wrong community gets no answer at all)")
            return SnmpTimeout(d, f"no answer within {tries}: check the device is up and reachable on UDP "
                                  f"{cfg.port}, SNMP is enabled, and the privacy protocol and key of {who} "
                                  f"(a wrong priv key gets no answer; for AES-192/256 check aes_variant: "
                                  f"'reeder' for Cisco, 'blumenthal' for Net-SNMP)")
        if isinstance(indication, (errind.WrongDigest, errind.AuthenticationFailure, errind.AuthenticationError)):
            return SnmpAuthenticationError(d, f"authentication failure for {who}: wrong digest; check the auth "
                                              f"protocol ({creds.auth_protocol}) and key (auth_secret "
                                              f"{cfg.auth_secret})")
        if isinstance(indication, errind.UnknownUserName):
            return SnmpAuthenticationError(d, f"authentication failure: the device has no SNMPv3 {who}; "
                                              f"check the user name and the device's USM configuration")
        if isinstance(indication, errind.DecryptionError):
            return SnmpAuthenticationError(d, f"decryption error for {who}: check the privacy protocol "
                                              f"({creds.priv_protocol}, {creds.aes_variant}) and key")
        if isinstance(indication, (errind.UnsupportedSecurityLevel, errind.NotInTimeWindow,
                                   errind.UnknownEngineID)):
            return SnmpAuthenticationError(d, f"{who} rejected ({indication}): check the security level "
                                              f"(auth/priv) matches the user on the device")
        if indication:
            if isinstance(indication, errind.TooBig):
                return SnmpError(d, f"response too big while reading {oid}: lower max_repetitions")
            return SnmpError(d, f"SNMP error while reading {oid}: {indication}")
        code = int(status)
        if code in (6, 16):  # noAccess, authorizationError
            return SnmpAuthorizationError(d, f"access to {oid} denied to {who} ({status.prettyPrint()}): check "
                                             f"the device's view for it and the security level it requires")
        if code == 1:
            return SnmpError(d, f"response too big while reading {oid}: lower max_repetitions")
        return SnmpError(d, f"the device answered {oid} with error {status.prettyPrint()}")

    async def get(self, oids: Sequence[str]) -> dict[str, int | str]:
        """GET in batches; objects the device lacks are left out."""
        found: dict[str, int | str] = {}
        for start in range(0, len(oids), GET_BATCH):
            batch = oids[start:start + GET_BATCH]
            try:
                ind, status, _, binds = await hl.get_cmd(
                    self.engine, self.auth, self.target, self.context,
                    *(hl.ObjectType(hl.ObjectIdentity(o)) for o in batch), lookupMib=False)
            except (PySnmpError, PyAsn1Error) as exc:
                raise SnmpError(self.device, f"SNMP failure reading {batch[0]}: {exc}") from exc
            if ind or status:
                raise self.error(ind, status, batch[0])
            for name, value in binds:
                if not isinstance(value, (NoSuchObject, NoSuchInstance, EndOfMibView, univ.Null)):
                    found[str(name)] = _python(value)
        return found

    async def walk(self, column: str, rows: int | None = None) -> Column:
        """Walk one table column (single-integer index) with GETBULK, bounded to MAX_ROWS rows.

        ``rows``: how many rows the table is known to have; asking for one more than that ends the
        walk in one request without making the device compute the columns that follow."""
        prefix, values = _oid(column), {}
        rep = self.config.max_repetitions if rows is None else max(1, min(rows + 1, self.config.max_repetitions))
        walker = hl.bulk_walk_cmd(self.engine, self.auth, self.target, self.context, 0, rep,
                                  hl.ObjectType(hl.ObjectIdentity(column)), lookupMib=False,
                                  lexicographicMode=False, maxCalls=MAX_ROWS // rep + 1)
        try:
            async with aclosing(walker):
                async for ind, status, _, binds in walker:
                    if ind or status:  # stop at once: bulk_walk_cmd retries a timeout forever
                        raise self.error(ind, status, column)
                    for name, value in binds:
                        index = tuple(name)[len(prefix):]
                        if len(index) == 1 and not isinstance(value, (NoSuchObject, NoSuchInstance, EndOfMibView)):
                            values[index[0]] = _python(value)
                    if len(values) >= MAX_ROWS:
                        break
        except (PySnmpError, PyAsn1Error) as exc:
            raise SnmpError(self.device, f"SNMP failure walking {column}: {exc}") from exc
        return Column(values, self.clock())

    async def interface_columns(self) -> dict[str, Column]:
        """ifDescr first (it tells how many rows), ifXTable if the device has it, then the ifTable
        columns — skipping the 32-bit octets and ifSpeed where the 64-bit/high-speed ones cover every row."""
        descr = await self.walk(f"{IF_ENTRY}.{IF_TABLE['descr']}")
        rows, columns = len(descr.values) or None, {"descr": descr}
        names = await self.walk(f"{IFX_ENTRY}.{IFX_TABLE['name']}", rows)
        if names.values:
            columns["name"] = names
            columns |= {n: await self.walk(f"{IFX_ENTRY}.{c}", rows) for n, c in IFX_TABLE.items() if n != "name"}
        for name, c in IF_TABLE.items():
            better = columns.get(_BETTER.get(name, ""))
            covered = better is not None and all(  # ifHighSpeed 0 means "use ifSpeed"; a counter may be 0
                better.values.get(i) not in (None, 0 if name == "speed" else None) for i in descr.values)
            if name != "descr" and not covered:
                columns[name] = await self.walk(f"{IF_ENTRY}.{c}", rows)
        return columns

    async def rows(self, entry: str, columns: Mapping[str, int], indexes: Iterable[int]) -> dict[int, dict[str, Any]]:
        """GET a few columns of the rows we care about (cheaper than walking whole columns)."""
        indexes = list(indexes)
        got = await self.get([f"{entry}.{c}.{i}" for i in indexes for c in columns.values()])
        return {i: {name: got.get(f"{entry}.{c}.{i}") for name, c in columns.items()} for i in indexes}


async def get_values(engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
                     oids: Sequence[str]) -> dict[str, int | str | None]:
    """GET ``oids`` from one device: each OID as given (without a leading dot) → its value, or None
    where the device has no such object or instance.

    Numeric OIDs only (ValueError otherwise, before anything is sent). Unlike :func:`poll` a device
    problem raises: the same :class:`SnmpError` subclasses, with the same words on what to check."""
    keys: dict[str, tuple[int, ...]] = {}
    for oid in oids:
        key = oid.removeprefix(".")
        if not _NUMERIC_OID.match(key):
            raise ValueError(f"oids: {oid!r} is not a numeric OID such as 1.3.6.1.2.1.1.5.0")
        keys[key] = _oid(key)
    if not keys:
        return {}
    s = _Session(engine, address, config, creds, 0.0)
    await s.open()
    found = {_oid(name): value for name, value in (await s.get(list(keys))).items()}
    return {key: found.get(numeric) for key, numeric in keys.items()}


async def poll(engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
               previous: PollState | None, now: float) -> PollResult:
    """Poll one device once. Never raises for a device problem: a failure is a result with
    ``Device(reachable=False, error=…)``, empty lists and the previous state kept.

    ``now`` is the caller's clock at the start; each counter sample is stamped with ``now`` plus the
    time the poll had taken when its column arrived. ``engine`` must not be shared with a device
    whose v3 user has the same name but other keys (see :meth:`~collector.network.snmp_poller.SnmpPoller.engine`)."""
    s = _Session(engine, address, config, creds, now)
    try:
        await s.open()
        system = await s.get(list(SYSTEM.values()))
        ticks = system.get(SYSTEM["uptime"])
        uptime = ticks / 100 if isinstance(ticks, int) else None
        before = previous or PollState()

        columns = await s.interface_columns()
        interfaces, samples = counters.interfaces(columns, uptime=uptime, previous=before.counters)

        loads: list[int] = []
        disks: dict[int, dict[str, Any]] = {}
        sensors: dict[int, dict[str, Any]] = {}
        sensor_names: dict[str, int | str] = {}
        try:  # optional MIBs: an agent that answers them with an error still has its interfaces polled
            loads = [v for v in (await s.walk(HR_PROCESSOR_LOAD)).values.values() if isinstance(v, int)]
            storage_types = (await s.walk(f"{HR_STORAGE_ENTRY}.2")).values
            disks = await s.rows(HR_STORAGE_ENTRY, {"descr": 3, "units": 4, "size": 5, "used": 6},
                                 (i for i, t in storage_types.items() if t == HR_STORAGE_FIXED_DISK))
            sensor_types = (await s.walk(f"{ENT_SENSOR_ENTRY}.1")).values
            sensors = await s.rows(ENT_SENSOR_ENTRY, {"scale": 2, "precision": 3, "value": 4, "status": 5},
                                   (i for i, t in sensor_types.items() if t == 8))  # celsius(8)
            sensor_names = await s.get([f"{ENT_PHYSICAL_NAME}.{i}" for i in sensors])
        except SnmpError as exc:
            if type(exc) is not SnmpError:  # silence, a key or access problem: the device, not a table
                raise
            logger.debug("snmp_optional_mib_failed", device=s.device, error=str(exc))
    except SnmpError as exc:
        return PollResult.failed(exc, previous, s.loop.time() - s.started)

    device = wire.Device(
        reachable=True, poll_seconds=s.loop.time() - s.started,
        sys_name=str(system.get(SYSTEM["name"], ""))[:4096], sys_descr=str(system.get(SYSTEM["descr"], ""))[:4096],
        sys_object_id=str(system.get(SYSTEM["object_id"], ""))[:256], uptime_seconds=uptime,
        rebooted=counters.rebooted(before.uptime, uptime))
    return PollResult(
        device=device, interfaces=interfaces,
        cpu_percent=sum(loads) / len(loads) if loads else None,
        storage=[counters.filesystem(**row) for row in disks.values() if None not in row.values()],
        temperatures=[counters.temperature(str(sensor_names.get(f"{ENT_PHYSICAL_NAME}.{i}") or f"sensor {i}"), **row)
                      for i, row in sensors.items() if row["value"] is not None and row["status"] in (1, None)],
        state=PollState(uptime=uptime, counters=samples))
