"""The pure counter arithmetic: rates across Counter32/Counter64 wraps, resets, reboots and dt 0."""

from __future__ import annotations

import pytest

from collector.network.counters import (
    COUNTER32,
    COUNTER64,
    Column,
    CounterKey,
    CounterSample,
    filesystem,
    interfaces,
    rates,
    rebooted,
    temperature,
    utilisation,
)

C32, C64 = 2**32, 2**64


@pytest.mark.parametrize(
    ("previous", "current", "bits", "expected"),
    [
        pytest.param(CounterSample(1_000, 100.0, 50.0), CounterSample(11_000, 110.0, 60.0), COUNTER32, 1_000.0,
                     id="normal-increase"),
        pytest.param(CounterSample(5, 100.0, 50.0), CounterSample(5, 160.0, 110.0), COUNTER64, 0.0,
                     id="idle-link"),
        pytest.param(CounterSample(C32 - 1_000, 100.0, 50.0), CounterSample(9_000, 110.0, 60.0), COUNTER32, 1_000.0,
                     id="counter32-wrap"),
        pytest.param(CounterSample(C64 - 500, 100.0, 50.0), CounterSample(4_500, 105.0, 55.0), COUNTER64, 1_000.0,
                     id="counter64-wrap"),
        pytest.param(CounterSample(10**12, 100.0, 50.0), CounterSample(300, 110.0, 60.0), COUNTER64, None,
                     id="counter64-cleared-without-reboot"),
        pytest.param(CounterSample(3_000_000, 100.0, 50.0), CounterSample(1_000, 110.0, 60.0), COUNTER32, None,
                     id="counter32-cleared-small-drop"),
        pytest.param(CounterSample(C32 - 1_000, 100.0, 86_400.0), CounterSample(9_000, 110.0, 3.0), COUNTER32, None,
                     id="reboot-uptime-went-back"),
        pytest.param(CounterSample(1_000, 100.0, 50.0), CounterSample(2_000, 100.0, 50.0), COUNTER32, None,
                     id="dt-zero"),
        pytest.param(CounterSample(1_000, 100.0, 50.0), CounterSample(2_000, 99.0, 49.0), COUNTER32, None,
                     id="clock-went-back"),
        pytest.param(None, CounterSample(2_000, 100.0, 50.0), COUNTER32, None, id="first-poll"),
        pytest.param(CounterSample(1_000, 100.0), CounterSample(3_000, 102.0), COUNTER64, 1_000.0,
                     id="no-uptime-known"),
    ],
)
def test_rates(previous: CounterSample | None, current: CounterSample, bits: int, expected: float | None) -> None:
    assert rates(previous, current, counter_bits=bits) == expected


def test_rebooted_only_when_uptime_went_back() -> None:
    assert rebooted(500.0, 3.0)
    assert not rebooted(500.0, 560.0)
    assert not rebooted(None, 3.0)
    assert not rebooted(500.0, None)


def test_utilisation_is_the_busier_direction_over_speed() -> None:
    assert utilisation(200e6, 500e6, 1_000_000_000) == 0.5
    assert utilisation(200e6, None, 1_000_000_000) is None
    assert utilisation(200e6, 100e6, 0) is None


def _columns(at: float, in_octets: int, *, hc: bool, out_octets: int = 0) -> dict[str, Column]:
    cols = {
        "descr": Column({1: "Gi0/1"}, at), "admin": Column({1: 1}, at), "oper": Column({1: 2}, at),
        "speed": Column({1: 100_000_000}, at), "in_errors": Column({1: 7}, at), "out_errors": Column({1: 1}, at),
        "in_discards": Column({1: 0}, at), "out_discards": Column({1: 0}, at),
        "in_octets": Column({1: in_octets % C32}, at), "out_octets": Column({1: out_octets % C32}, at),
    }
    if hc:
        cols |= {"name": Column({1: "Gi0/1"}, at), "alias": Column({1: "uplink\x00to core"}, at),
                 "high_speed": Column({1: 1000}, at),
                 "hc_in_octets": Column({1: in_octets}, at), "hc_out_octets": Column({1: out_octets}, at)}
    return cols


def test_interfaces_prefer_hc_counters_and_high_speed() -> None:
    first, state = interfaces(_columns(100.0, 5 * C32, hc=True), uptime=10.0, previous={})
    assert first[0].in_bps is None and first[0].in_octets == 5 * C32
    assert CounterKey(1, "in_octets", COUNTER64) in state
    second, _ = interfaces(_columns(110.0, 5 * C32 + 12_500_000, hc=True, out_octets=1_250_000),
                           uptime=20.0, previous=state)
    iface = second[0]
    assert iface.in_bps == 10_000_000.0 and iface.out_bps == 1_000_000.0
    assert iface.speed_bps == 1_000_000_000 and iface.utilisation == 0.01
    assert iface.admin_up and not iface.oper_up
    assert iface.alias == "uplink to core"  # control characters never reach the wire
    assert iface.errors_per_second == 0.0


def test_interfaces_fall_back_to_counter32_and_ifspeed_across_a_wrap() -> None:
    _, state = interfaces(_columns(100.0, C32 - 1_000_000, hc=False), uptime=10.0, previous={})
    after, _ = interfaces(_columns(110.0, C32 + 1_500_000, hc=False), uptime=20.0, previous=state)
    assert after[0].in_bps == 2_500_000 / 10 * 8
    assert after[0].speed_bps == 100_000_000 and after[0].name == "Gi0/1"


def test_interfaces_after_reboot_have_no_rate() -> None:
    _, state = interfaces(_columns(100.0, 9_000_000, hc=True), uptime=9_000.0, previous={})
    after, _ = interfaces(_columns(110.0, 2_000, hc=True), uptime=5.0, previous=state)
    assert after[0].in_bps is None and after[0].utilisation is None


def test_storage_units_and_sensor_scale() -> None:
    disk = filesystem(descr="/", units=4096, size=1000, used=250)
    assert (disk.size, disk.free, disk.mountpoint) == (4_096_000, 3_072_000, "/")
    assert filesystem(descr="/big", units=1024, size=-1, used=0).size == (C32 - 1) * 1024
    assert temperature("CPU", scale=9, precision=1, value=423).celsius == pytest.approx(42.3)
    assert temperature("Inlet", scale=8, precision=0, value=31500).celsius == pytest.approx(31.5)
