"""Helpers shared by the probe tests: build a probe from config, check a value against the wire format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

import msgspec

from agent.config import ProbesConfig
from agent.probes import ProbeState
from schoolops import conf, wire

P = TypeVar("P")


def probes_config(**data: Any) -> ProbesConfig:
    return conf.convert(data, ProbesConfig, source="test")


def built(factory: Callable[[ProbesConfig, ProbeState], P | None], config: ProbesConfig, state: ProbeState) -> P:
    probe = factory(config, state)
    assert probe is not None
    return probe


def assert_wire(field: str, value: Any) -> None:
    """``value`` round-trips as the report field it fills, every constraint of the wire format checked."""
    field_type = get_type_hints(wire.Report, include_extras=True)[field]
    assert msgspec.json.decode(msgspec.json.encode(value), type=field_type) == value
    report = wire.Report(
        schema=wire.SCHEMA_VERSION, asset="test-host", stream="0" * 16, seq=1, collected_at=1.0, interval=15.0,
        agent_version="test", **{field: value},
    )
    assert getattr(wire.decode_report(wire.encode_report(report)), field) == value
