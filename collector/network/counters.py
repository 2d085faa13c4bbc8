"""Pure arithmetic on SNMP counters: per-second rates across wraps and resets, and IF-MIB rows to
:class:`schoolops.wire.Interface`.

No I/O and no clock: every function takes the samples (values and the times they were read) and
returns data. The SNMP shell (:mod:`collector.network.snmp`) reads the device and keeps the
samples of one poll for the next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from schoolops import wire

COUNTER32 = 32
COUNTER64 = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class CounterSample:
    """One reading of a counter: its raw value, when it was read (poller clock, seconds) and the
    device's sysUpTime (seconds) in the same poll, which tells a reboot from a wrap."""

    value: int
    at: float
    uptime: float | None = None


def rebooted(previous_uptime: float | None, uptime: float | None) -> bool:
    """sysUpTime went back: the agent (and so every counter) restarted since the previous poll.

    sysUpTime also wraps after 497 days; that looks like a reboot too and costs one rate."""
    return previous_uptime is not None and uptime is not None and uptime < previous_uptime


def rates(previous: CounterSample | None, current: CounterSample, *, counter_bits: int) -> float | None:
    """Units per second between two readings of one counter, or ``None`` when no honest rate exists.

    - no previous reading, or time did not advance (dt <= 0): ``None``;
    - the device rebooted (sysUpTime went back): ``None`` — counters restarted from zero, and a
      rate computed across that would be a spike;
    - the counter went down: a wrap of a ``counter_bits`` counter if the wrapped increase is under
      half the counter's range (serial-number arithmetic, RFC 1982); otherwise the counter was reset
      or cleared without a reboot, and the rate is ``None``.
    """
    if previous is None:
        return None
    dt = current.at - previous.at
    if dt <= 0 or rebooted(previous.uptime, current.uptime):
        return None
    modulus = 1 << counter_bits
    delta = current.value - previous.value
    if delta < 0:
        delta += modulus
        if delta >= modulus >> 1:
            return None
    return delta / dt


def utilisation(in_bps: float | None, out_bps: float | None, speed_bps: int) -> float | None:
    """The busier direction's share of the link speed (0..1, more when the speed is wrong)."""
    if speed_bps <= 0 or in_bps is None or out_bps is None:
        return None
    return max(in_bps, out_bps) / speed_bps


# ---------------------------------------------------------------------------------------------
# IF-MIB rows → wire.Interface

class CounterKey(NamedTuple):
    """Which counter a sample belongs to; the width is part of it so a 32-bit reading is never
    compared with a 64-bit one."""

    if_index: int
    counter: str  # in_octets, out_octets, in_errors, out_errors, in_discards, out_discards
    bits: int


@dataclass(frozen=True, slots=True)
class Column:
    """One walked table column: value per ifIndex, and when its last response arrived."""

    values: Mapping[int, int | str]
    at: float


# IF-MIB column names as the shell walks them; ifTable (32-bit) first, ifXTable after.
IF_COLUMNS = ("descr", "admin", "oper", "speed", "in_octets", "in_discards", "in_errors",
              "out_octets", "out_discards", "out_errors")
IFX_COLUMNS = ("name", "alias", "high_speed", "hc_in_octets", "hc_out_octets")


def label(text: object, limit: int = 64) -> str:
    """A wire label: no control characters, at most ``limit`` characters."""
    return _CONTROL.sub(" ", str(text)).strip()[:limit]


def _int(column: Column | None, index: int) -> int | None:
    if column is None:
        return None
    value = column.values.get(index)
    return value if isinstance(value, int) else None


def _sample(columns: Mapping[str, Column], index: int, counter: str, uptime: float | None,
            hc: str | None = None) -> tuple[CounterKey, CounterSample] | None:
    """The 64-bit ifXTable counter when the device has it for this interface, else the 32-bit one."""
    for name, bits in ((hc, COUNTER64), (counter, COUNTER32)):
        if name is None or (column := columns.get(name)) is None:
            continue
        if (value := _int(column, index)) is not None:
            return CounterKey(index, counter, bits), CounterSample(value, column.at, uptime)
    return None


def _rate(pair: tuple[CounterKey, CounterSample] | None,
          previous: Mapping[CounterKey, CounterSample]) -> float | None:
    if pair is None:
        return None
    key, sample = pair
    return rates(previous.get(key), sample, counter_bits=key.bits)


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def interfaces(
    columns: Mapping[str, Column], *, uptime: float | None, previous: Mapping[CounterKey, CounterSample],
) -> tuple[list[wire.Interface], dict[CounterKey, CounterSample]]:
    """Build interfaces from walked IF-MIB columns and the previous poll's samples.

    Returns the interfaces (raw counters plus rates where an honest rate exists) and the samples
    to keep for the next poll. Speed is ifHighSpeed x 10^6 when the device reports it, else ifSpeed.
    """
    indexes = sorted({i for name in ("descr", "name") if name in columns for i in columns[name].values})
    result: list[wire.Interface] = []
    samples: dict[CounterKey, CounterSample] = {}
    for index in indexes:
        pairs = {
            "in_octets": _sample(columns, index, "in_octets", uptime, "hc_in_octets"),
            "out_octets": _sample(columns, index, "out_octets", uptime, "hc_out_octets"),
            **{c: _sample(columns, index, c, uptime)
               for c in ("in_errors", "out_errors", "in_discards", "out_discards")},
        }
        samples.update(p for p in pairs.values() if p is not None)
        per_second = {c: _rate(p, previous) for c, p in pairs.items()}
        in_bps = None if per_second["in_octets"] is None else per_second["in_octets"] * 8
        out_bps = None if per_second["out_octets"] is None else per_second["out_octets"] * 8
        high_speed = _int(columns.get("high_speed"), index)
        speed = high_speed * 1_000_000 if high_speed else (_int(columns.get("speed"), index) or 0)
        name = columns["name"].values.get(index) if "name" in columns else None
        descr = columns["descr"].values.get(index) if "descr" in columns else None
        alias = columns["alias"].values.get(index, "") if "alias" in columns else ""

        raw = {c: p[1].value if p is not None else 0 for c, p in pairs.items()}
        result.append(wire.Interface(
            index=index,
            name=label(name or descr or f"if{index}"),
            alias=label(alias),
            admin_up=_int(columns.get("admin"), index) in (1, None),  # up(1)
            oper_up=_int(columns.get("oper"), index) in (1, None),
            speed_bps=speed,
            in_octets=raw["in_octets"], out_octets=raw["out_octets"],
            in_errors=raw["in_errors"], out_errors=raw["out_errors"],
            in_discards=raw["in_discards"], out_discards=raw["out_discards"],
            in_bps=in_bps,
            out_bps=out_bps,
            utilisation=utilisation(in_bps, out_bps, speed),
            errors_per_second=_sum(per_second["in_errors"], per_second["out_errors"]),
            discards_per_second=_sum(per_second["in_discards"], per_second["out_discards"]),
        ))
    return result, samples


# ---------------------------------------------------------------------------------------------
# HOST-RESOURCES and ENTITY-SENSOR readings → wire types

# ENTITY-SENSOR-MIB SensorDataScale: the power of ten each enumeration stands for
_SENSOR_SCALE = {1: -24, 2: -21, 3: -18, 4: -15, 5: -12, 6: -9, 7: -6, 8: -3, 9: 0,
                 10: 3, 11: 6, 12: 9, 13: 12, 14: 18, 15: 15, 16: 21, 17: 24}


def _unsigned(value: int) -> int:
    """hrStorageSize/Used are Integer32; agents that overflow them on big disks go negative."""
    return value + (1 << 32) if value < 0 else value


def filesystem(*, descr: object, units: object, size: object, used: object) -> wire.Filesystem:
    """An hrStorageTable row (sizes in allocation units) as a filesystem in bytes."""
    unit = units if isinstance(units, int) and units > 0 else 1
    total = _unsigned(int(size)) * unit if isinstance(size, int) else 0
    free = max(total - _unsigned(used) * unit, 0) if isinstance(used, int) else 0
    return wire.Filesystem(device=label(descr), mountpoint=str(descr)[:1024], fstype="", size=total,
                           free=free, avail=free, files=0, files_free=0)


def temperature(sensor: str, *, scale: object, precision: object, value: object,
                status: object = None) -> wire.Temperature:
    """An entPhySensorTable celsius row: value x 10^scale / 10^precision."""
    exponent = _SENSOR_SCALE.get(scale, 0) if isinstance(scale, int) else 0
    digits = precision if isinstance(precision, int) else 0
    reading = int(value) if isinstance(value, int) else 0
    return wire.Temperature(chip="entity-sensor", sensor=label(sensor), celsius=reading * 10.0 ** (exponent - digits))
