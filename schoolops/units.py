"""Durations and sizes as people write them in config files: ``15s``, ``26h``, ``7d``, ``50MB``."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, None: 1,
}


class Seconds(float):
    """A duration in seconds; config accepts a number of seconds or ``<number><ms|s|m|h|d|w>``."""

    @classmethod
    def parse(cls, value: object) -> Seconds:
        if isinstance(value, bool):
            raise ValueError(f"expected a duration such as 15s, 5m or 26h, got {value!r}")
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        else:
            raise ValueError(f"expected a duration such as 15s, 5m or 26h, got {value!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a duration must be a finite, non-negative number, got {value!r}")
        return cls(seconds)


class ByteSize(int):
    """A size in bytes; config accepts a number of bytes or ``<number><B|KB|MB|GB|KiB|MiB|GiB>``."""

    @classmethod
    def parse(cls, value: object) -> ByteSize:
        if isinstance(value, bool):
            raise ValueError(f"expected a size such as 512KiB or 50MB, got {value!r}")
        if isinstance(value, int):
            size = value
        elif isinstance(value, str) and (m := _SIZE.match(value)):
            unit = m.group(2).lower() if m.group(2) else None
            size = int(float(m.group(1)) * _SIZE_UNITS[unit])
        else:
            raise ValueError(f"expected a size such as 512KiB or 50MB, got {value!r}")
        if isinstance(value, float) or size < 0:
            raise ValueError(f"a size cannot be negative, got {value!r}")
        return cls(size)


def dec_hook(type_: type, obj: object) -> object:
    """msgspec decode hook for the unit types above."""
    if type_ is Seconds:
        return Seconds.parse(obj)
    if type_ is ByteSize:
        return ByteSize.parse(obj)
    raise NotImplementedError(f"no decoder for {type_!r}")


def enc_hook(obj: object) -> object:
    """msgspec encode hook: unit types written back as people write them."""
    if isinstance(obj, Seconds):
        return f"{float(obj):g}s"
    if isinstance(obj, ByteSize):
        return int(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


def schema_hook(type_: type) -> dict[str, object]:
    """msgspec JSON Schema hook: how the unit types look in an API document."""
    if type_ is Seconds:
        return {"type": ["number", "string"], "description": "seconds, or a duration such as 15s, 5m, 26h, 7d"}
    if type_ is ByteSize:
        return {"type": ["integer", "string"], "description": "bytes, or a size such as 512KiB, 64MiB"}
    raise NotImplementedError(f"no schema for {type_!r}")
