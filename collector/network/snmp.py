"""SNMP polling of network devices: one poll reads the system group, IF-MIB, HOST-RESOURCES and
ENTITY-SENSOR tables; :class:`~collector.network.snmp_poller.SnmpPoller` polls a fleet on each
device's cadence. :func:`get_values` reads a few objects (a runbook's ``snmp_get`` step).

The conversation with one device (requests, walks of several columns at once, credentials, errors
that name what to check) is :mod:`collector.network.snmp_session`; :func:`poll` turns an
:class:`SnmpError` into ``Device(reachable=False, error=…)`` so a dead device never raises into the
scheduler. The arithmetic (rates, wraps, reboots, units) is pure, in
:mod:`collector.network.counters`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pyasn1.error import PyAsn1Error
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hl

from collector.network import counters
from collector.network.config import SnmpConfig
from collector.network.counters import Column, CounterKey, CounterSample
from collector.network.snmp_session import (
    _NUMERIC_OID,
    GET_BATCH,
    LCD,
    MAX_ROWS,
    RESULTS,
    Credentials,
    Session,
    SnmpAuthenticationError,
    SnmpAuthorizationError,
    SnmpDeadlineExceeded,
    SnmpError,
    SnmpTimeout,
    _InternalError,
    _oid,
)
from schoolops import wire

__all__ = [  # the session's names are re-exported: callers import them from here
    "GET_BATCH", "MAX_ROWS", "RESULTS", "Credentials", "PollResult", "PollState", "SnmpAuthenticationError",
    "SnmpAuthorizationError", "SnmpDeadlineExceeded", "SnmpError", "SnmpTimeout", "_InternalError", "get_values",
    "poll", "prepare",
]

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
IF_NUMBER = "1.3.6.1.2.1.2.1.0"  # ifNumber: the rows of the ifTable
STORAGE_COLUMNS = {"descr": 3, "units": 4, "size": 5, "used": 6}
SENSOR_COLUMNS = {"scale": 2, "precision": 3, "value": 4, "status": 5}
_BETTER = {"in_octets": "hc_in_octets", "out_octets": "hc_out_octets", "speed": "high_speed"}  # ifXTable over ifTable


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


async def interface_columns(s: Session, rows: int | None) -> dict[str, Column]:
    """ifDescr, the ifXTable and the ifTable's state and error columns in one walk; then the
    32-bit octets and ifSpeed only where the 64-bit/high-speed columns do not cover every row.
    ``rows``: ifNumber, when the device gave it."""
    first = {"descr": f"{IF_ENTRY}.{IF_TABLE['descr']}"} | {n: f"{IFX_ENTRY}.{c}" for n, c in IFX_TABLE.items()}
    first |= {n: f"{IF_ENTRY}.{c}" for n, c in IF_TABLE.items() if n != "descr" and n not in _BETTER}
    columns = await s.walk(first, rows)
    descr = columns["descr"]
    if not columns["name"].values:  # no ifXTable: only what the ifTable says
        columns = {n: c for n, c in columns.items() if n not in IFX_TABLE}
    rest = {}
    for name, better_name in _BETTER.items():
        better = columns.get(better_name)
        covered = better is not None and all(  # ifHighSpeed 0 means "use ifSpeed"; a counter may be 0
            better.values.get(i) not in (None, 0 if name == "speed" else None) for i in descr.values)
        if not covered:
            rest[name] = f"{IF_ENTRY}.{IF_TABLE[name]}"
    if rest:
        columns |= await s.walk(rest, len(descr.values) or rows)
    return columns


def _rows(got: Mapping[str, int | str], entry: str, columns: Mapping[str, int],
          indexes: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The values of a few columns of the rows we care about, from one GET."""
    return {i: {name: got.get(f"{entry}.{c}.{i}") for name, c in columns.items()} for i in indexes}


def _row_oids(entry: str, columns: Mapping[str, int], indexes: Iterable[int]) -> list[str]:
    return [f"{entry}.{c}.{i}" for i in indexes for c in columns.values()]


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
    s = Session(engine, address, config, creds, 0.0)
    try:
        await s.open()
        found = {_oid(name): value for name, value in (await s.get(list(keys))).items()}
    finally:
        s.close()
    return {key: found.get(numeric) for key, numeric in keys.items()}


async def prepare(engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials) -> None:
    """Register an SNMPv3 device with ``engine`` (its user, its address) without sending anything.

    pysnmp rebuilds its community and target lookup tables at the first message after any change to
    them: a cycle that registers its new devices first pays that once, not once per device (which
    made a first cycle over thousands of devices quadratic). A device that cannot be set up within
    its timeout (a name that does not resolve) is left for :func:`poll` to report. A v2c device
    needs nothing: it is polled over a socket of its own (:mod:`collector.network.snmp_wire`)."""
    if creds.community is not None:
        return
    s = Session(engine, address, config, creds, 0.0)
    try:
        async with asyncio.timeout(float(config.timeout)):
            await s.open()
        LCD.configure(engine, s.auth, s.target, s.context.contextName)
    except (TimeoutError, SnmpError, PySnmpError, PyAsn1Error) as exc:
        logger.debug("snmp_prepare_failed", device=s.device, error=str(exc) or type(exc).__name__)


async def poll(engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
               previous: PollState | None, now: float) -> PollResult:
    """Poll one device once. Never raises for a device problem: a failure is a result with
    ``Device(reachable=False, error=…)``, empty lists and the previous state kept.

    ``now`` is the caller's clock at the start; each counter sample is stamped with ``now`` plus the
    time the poll had taken when its column arrived. ``engine`` must not be shared with a device
    whose v3 user has the same name but other keys (see :meth:`~collector.network.snmp_poller.SnmpPoller.engine`)."""
    s = Session(engine, address, config, creds, now)
    try:
        await s.open()
        system = await s.get([*SYSTEM.values(), IF_NUMBER])
        ticks = system.get(SYSTEM["uptime"])
        uptime = ticks / 100 if isinstance(ticks, int) else None
        before = previous or PollState()

        count = system.get(IF_NUMBER)
        columns = await interface_columns(s, count if isinstance(count, int) and 0 < count <= MAX_ROWS else None)
        interfaces, samples = counters.interfaces(columns, uptime=uptime, previous=before.counters)

        loads: list[int] = []
        disks: dict[int, dict[str, Any]] = {}
        sensors: dict[int, dict[str, Any]] = {}
        sensor_names: dict[str, int | str] = {}
        try:  # optional MIBs: an agent that answers them with an error still has its interfaces polled
            optional = await s.walk({"loads": HR_PROCESSOR_LOAD, "storage": f"{HR_STORAGE_ENTRY}.2",
                                     "sensors": f"{ENT_SENSOR_ENTRY}.1"}, probe=1)
            loads = [v for v in optional["loads"].values.values() if isinstance(v, int)]
            disk_rows = [i for i, t in optional["storage"].values.items() if t == HR_STORAGE_FIXED_DISK]
            sensor_rows = [i for i, t in optional["sensors"].values.items() if t == 8]  # celsius(8)
            names = [f"{ENT_PHYSICAL_NAME}.{i}" for i in sensor_rows]
            wanted = _row_oids(HR_STORAGE_ENTRY, STORAGE_COLUMNS, disk_rows) + \
                _row_oids(ENT_SENSOR_ENTRY, SENSOR_COLUMNS, sensor_rows) + names
            got = await s.get(wanted) if wanted else {}
            disks = _rows(got, HR_STORAGE_ENTRY, STORAGE_COLUMNS, disk_rows)
            sensors = _rows(got, ENT_SENSOR_ENTRY, SENSOR_COLUMNS, sensor_rows)
            sensor_names = {name: got[name] for name in names if name in got}
        except SnmpError as exc:
            if type(exc) is not SnmpError:  # silence, a key or access problem: the device, not a table
                raise
            logger.debug("snmp_optional_mib_failed", device=s.device, error=str(exc))
    except SnmpError as exc:
        return PollResult.failed(exc, previous, s.loop.time() - s.started)
    finally:
        s.close()

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
