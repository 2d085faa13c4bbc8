"""The report wire format v1: what the collector accepts, and the reason it gives when it refuses."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from schoolops import wire


def report(**overrides: Any) -> wire.Report:
    fields: dict[str, Any] = dict(
        schema=wire.SCHEMA_VERSION, asset="web-01", stream="0123456789abcdef", seq=1, collected_at=1_700_000_000.0,
        interval=15.0, agent_version="0.1.0",
    )
    fields.update(overrides)
    return wire.Report(**fields)


def full_report() -> wire.Report:
    return report(
        labels=wire.AssetLabels(site="main", role="web", tier=wire.Tier.CORE),
        host=wire.Host(hostname="web-01", boot_time=1_699_000_000.0, os="Debian 12", kernel="6.1.0"),
        cpu=wire.Cpu(percent=12.5, cores=[wire.CpuTimes(10.0, 0.0, 5.0, 100.0, 1.0, 0.0, 0.5, 0.0)]),
        memory=wire.Memory(total=8 << 30, available=4 << 30, used=3 << 30, free=1 << 30),
        load=wire.Load(load1=0.5, load5=0.4, load15=0.3),
        filesystems=[wire.Filesystem(device="/dev/sda1", mountpoint="/", fstype="ext4", size=100, free=50, avail=40,
                                     files=10, files_free=5)],
        ports=[wire.Port(name="ssh", port=22, listening=True)],
        commands=[wire.CommandCheck(name="disk", status=wire.CheckStatus.WARNING, output="DISK WARNING",
                                    duration_seconds=0.2, perfdata=[wire.PerfData(label="/", value=81.0, uom="%")])],
        errors=[wire.ProbeError(probe="temperatures", message="no sensors")],
        spool=wire.SpoolStats(pending=2, pending_bytes=900, dropped_total=1, replayed_total=3),
    )


def decode_error(body: bytes) -> wire.ReportError:
    with pytest.raises(wire.ReportError) as info:
        wire.decode_report(body)
    return info.value


def test_a_full_report_round_trips_unchanged() -> None:
    original = full_report()
    assert wire.decode_report(wire.encode_report(original)) == original


def test_a_minimal_report_round_trips_with_defaults() -> None:
    decoded = wire.decode_report(wire.encode_report(report()))
    assert decoded == report()
    assert decoded.cpu is None and decoded.errors == [] and decoded.spool == wire.SpoolStats()


@pytest.mark.parametrize("body", [b"{", b"", b"not json", b'{"schema": 1,}'])
def test_a_body_that_is_not_json_is_malformed_json(body: bytes) -> None:
    assert decode_error(body).code == "malformed_json"


@pytest.mark.parametrize("version", [2, 0])
def test_another_schema_version_is_refused_naming_the_version(version: int) -> None:
    error = decode_error(wire.encode_report(report(schema=version)))
    assert error.code == "unsupported_schema"
    assert f"version {version} " in error.message


def test_a_future_schema_with_an_unknown_shape_is_still_refused_as_unsupported() -> None:
    # a version-2 report need not look like version 1: the version decides the reason given
    body = msgspec.json.encode({"schema": 2, "asset": {"name": "web-01"}, "seq": "one"})
    error = decode_error(body)
    assert (error.code, "version 2 " in error.message) == ("unsupported_schema", True)


@pytest.mark.parametrize("body", [b"[]", b"null", b'{"schema": "1"}'])
def test_json_that_is_not_a_report_object_is_invalid(body: bytes) -> None:
    assert decode_error(body).code == "invalid_report"


@pytest.mark.parametrize(
    "asset", ["../etc", "a/b", "x'; DROP TABLE assets;--", "", "a" * 64, "-web", ".hidden", "web 01", "web\n01"]
)
def test_asset_names_outside_the_safe_alphabet_are_invalid(asset: str) -> None:
    error = decode_error(wire.encode_report(report(asset=asset)))
    assert error.code == "invalid_report"
    assert "$.asset" in error.message


@pytest.mark.parametrize("asset", ["a", "web-01", "db_2.main", "a" * 63, "9lab"])
def test_asset_names_in_the_safe_alphabet_are_accepted(asset: str) -> None:
    assert wire.decode_report(wire.encode_report(report(asset=asset))).asset == asset


@pytest.mark.parametrize("seq", [0, -1, 2**53, 2**64])
def test_a_seq_outside_1_to_2_pow_53_minus_1_is_invalid(seq: int) -> None:
    error = decode_error(wire.encode_report(report(seq=seq)))
    assert error.code == "invalid_report"
    assert "$.seq" in error.message


def test_the_largest_exact_json_integer_is_a_valid_seq() -> None:
    assert wire.decode_report(wire.encode_report(report(seq=wire.MAX_SEQ))).seq == 2**53 - 1


@pytest.mark.parametrize("stream", ["", "0123", "0123456789ABCDEF", "g" * 16, "0" * 65])
def test_a_stream_id_that_is_not_16_to_64_lowercase_hex_is_invalid(stream: str) -> None:
    assert decode_error(wire.encode_report(report(stream=stream))).code == "invalid_report"


@pytest.mark.parametrize("percent", [101.0, -0.1])
def test_a_cpu_percent_outside_0_to_100_is_invalid(percent: float) -> None:
    error = decode_error(wire.encode_report(report(cpu=wire.Cpu(percent=percent, cores=[]))))
    assert error.code == "invalid_report"
    assert "$.cpu.percent" in error.message


def test_cpu_percent_100_is_valid() -> None:
    assert wire.decode_report(wire.encode_report(report(cpu=wire.Cpu(percent=100.0, cores=[])))).cpu.percent == 100.0


def test_a_negative_counter_is_invalid() -> None:
    memory = wire.Memory(total=-1, available=0, used=0, free=0)
    assert decode_error(wire.encode_report(report(memory=memory))).code == "invalid_report"


def test_unknown_fields_from_a_newer_agent_are_ignored() -> None:
    data = msgspec.to_builtins(full_report())
    data["gpu"] = {"percent": 3}  # a section this collector does not know
    data["host"]["uptime_human"] = "3 days"  # a field inside a known section
    assert wire.decode_report(msgspec.json.encode(data)) == full_report()


def test_report_error_is_a_value_error_carrying_code_and_message() -> None:
    error = decode_error(b"{")
    assert isinstance(error, ValueError)
    assert str(error) == error.message


@pytest.mark.parametrize(
    "overrides",
    [{"asset": "web-01\n"}, {"stream": "0123456789abcdef\n"}, {"labels": wire.AssetLabels(site="main\n")}],
    ids=["asset", "stream", "label"],
)
def test_a_trailing_newline_in_an_identifier_or_label_is_invalid(overrides: dict[str, Any]) -> None:
    assert decode_error(wire.encode_report(report(**overrides))).code == "invalid_report"


@pytest.mark.parametrize("site", ["main\nsite", "tab\there", "nul\x00"])
def test_control_characters_inside_a_label_are_invalid(site: str) -> None:
    body = wire.encode_report(report(labels=wire.AssetLabels(site=site)))
    assert decode_error(body).code == "invalid_report"
