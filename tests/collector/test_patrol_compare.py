"""A run compared with the previous one: new, recovered, still abnormal (and for how many days)."""

from __future__ import annotations

from collector.patrol.compare import DAY, compare

DISK = ("disk", "web-01", "/var")
PORTAL = ("portal", "web-01", "")
UPS = ("ups", "", "")


def test_new_recovered_and_still_abnormal_with_the_length_of_the_streak() -> None:
    now = 10 * DAY
    history = {PORTAL: [(9 * DAY, "abnormal"), (8 * DAY, "abnormal"), (7 * DAY, "normal")]}
    result = compare([(DISK, "normal"), (PORTAL, "abnormal"), (UPS, "abnormal")],
                     [(DISK, "abnormal"), (PORTAL, "abnormal"), (UPS, "normal")],
                     lambda identity: history.get(identity, []), now=now, previous_run=4)

    assert result.previous_run == 4
    assert result.new_abnormal == [UPS]
    assert result.recovered == [DISK]
    [still] = result.still_abnormal
    assert still.identity == PORTAL and still.since == 8 * DAY and still.days == 2


def test_the_first_run_has_nothing_to_recover_and_a_not_checked_item_is_not_recovered() -> None:
    result = compare([(DISK, "abnormal")], None, lambda identity: [], now=DAY)
    assert result.new_abnormal == [DISK] and result.recovered == [] and result.still_abnormal == []
    result = compare([(DISK, "not_checked")], [(DISK, "abnormal")], lambda identity: [], now=DAY)
    assert result.recovered == [] and result.new_abnormal == []
