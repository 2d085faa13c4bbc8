"""Durations and sizes as people write them in config files."""

from __future__ import annotations

import math

import msgspec
import pytest

from schoolops import conf
from schoolops.units import ByteSize, Seconds


@pytest.mark.parametrize(
    "text, seconds",
    [
        (15, 15.0),
        (0, 0.0),
        (2.5, 2.5),
        ("15", 15.0),
        ("15s", 15.0),
        ("250ms", 0.25),
        ("5m", 300.0),
        ("26h", 93_600.0),
        ("7d", 604_800.0),
        ("2w", 1_209_600.0),
        ("1.5h", 5_400.0),
        (" 15 s ", 15.0),
    ],
)
def test_seconds_parse(text: object, seconds: float) -> None:
    parsed = Seconds.parse(text)
    assert isinstance(parsed, Seconds)
    assert parsed == seconds


@pytest.mark.parametrize(
    "value", [-1, -0.5, "-5s", True, False, None, "", "s", "15 parsecs", "15S", "1e3", "five minutes", "15s 3m", [15]]
)
def test_seconds_parse_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        Seconds.parse(value)
    assert repr(value) in str(info.value)


def test_seconds_parse_rejects_nan() -> None:
    with pytest.raises(ValueError):
        Seconds.parse(math.nan)


@pytest.mark.parametrize(
    "text, size",
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("512B", 512),
        ("1KB", 1000),
        ("1kb", 1000),
        ("1KiB", 1024),
        ("512KiB", 512 * 1024),
        ("50MB", 50_000_000),
        ("64MiB", 64 * 1024**2),
        ("2GB", 2 * 1000**3),
        ("1GiB", 1024**3),
        ("1TiB", 1024**4),
        ("1.5KB", 1500),
        (" 1 GiB ", 1024**3),
    ],
)
def test_bytesize_parse(text: object, size: int) -> None:
    parsed = ByteSize.parse(text)
    assert isinstance(parsed, ByteSize)
    assert parsed == size


@pytest.mark.parametrize(
    "value", [-1, "-1", "-1KB", True, False, None, 1.5, "", "lots", "1PB", "1e3", "KB", "10 MBs", [1]]
)
def test_bytesize_parse_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        ByteSize.parse(value)
    assert repr(value) in str(info.value)


def test_units_decode_through_msgspec_in_config() -> None:
    class Limits(msgspec.Struct):
        timeout: Seconds
        size: ByteSize

    limits = conf.convert({"timeout": "5m", "size": "1MiB"}, Limits, source="test")
    assert (limits.timeout, limits.size) == (300.0, 1024 * 1024)
    assert isinstance(limits.timeout, Seconds) and isinstance(limits.size, ByteSize)
