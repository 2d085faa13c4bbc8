"""Classification: the rule's level adjusted by tier, scope, calendar and duration, with the reason.

``classify`` is pure, so the cases are a table: the inputs, the severity expected and the phrases
the reason must contain; then properties over any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.calendar import SCHOOL_BREAK, WEEKEND, CalendarState
from collector.classify import Classification, ClassifyPolicy, ScopeInfo, classify
from collector.domain import AssetContext, FaultType, Finding, Severity
from schoolops.wire import Tier

NOW = 1_800_000_000.0
HOUR = 3600.0
P1, P2, P3, P4, INFO = Severity.P1, Severity.P2, Severity.P3, Severity.P4, Severity.INFO
CORE, IMPORTANT, NORMAL = Tier.CORE, Tier.IMPORTANT, Tier.NORMAL

ALONE = ScopeInfo(failing_in_site=1, assets_in_site=10, failing_siblings=1, siblings=5)
QUIET = CalendarState(exam_day=None, class_hours=False, holiday=None, in_term=True)  # a school day, after hours
LESSONS = CalendarState(exam_day=None, class_hours=True, holiday=None, in_term=True)
EXAM = CalendarState(exam_day="autumn finals", class_hours=True, holiday=None, in_term=True)
EXAM_EVENING = CalendarState(exam_day="autumn finals", class_hours=False, holiday=None, in_term=True)
NATIONAL_DAY = CalendarState(exam_day=None, class_hours=False, holiday="National Day", in_term=True)
SATURDAY = CalendarState(exam_day=None, class_hours=False, holiday=WEEKEND, in_term=True)
SUMMER = CalendarState(exam_day=None, class_hours=False, holiday=SCHOOL_BREAK, in_term=False)


@dataclass(frozen=True)
class Case:
    base: Severity = P3
    tier: Tier = IMPORTANT
    role: str = "file-server"
    type: FaultType = FaultType.SYSTEM
    scope: ScopeInfo = ALONE
    calendar: CalendarState = QUIET
    lasted: float = 600.0
    parents: tuple[str, ...] = ("core-sw1",)

    def run(self) -> Classification:
        finding = Finding(
            rule="filesystem_usage", asset="srv1", key="/", type=self.type, severity=self.base,
            value=92.0, summary="filesystem / is 92% full", since=NOW - self.lasted,
        )
        asset = AssetContext(
            name="srv1", site="north-building", role=self.role, tier=self.tier, parents=self.parents
        )
        return classify(finding, asset, self.scope, self.calendar, now=NOW)


@dataclass(frozen=True)
class Expect:
    severity: Severity
    fragments: tuple[str, ...] = ()
    absent: tuple[str, ...] = field(default=())


TEACHING = "lms"
CASES: list[tuple[str, Case, Expect]] = [
    ("important-plain", Case(), Expect(P3, ("P3 from rule filesystem_usage (filesystem / is 92% full); no adjustment",))),
    ("core-raises", Case(tier=CORE), Expect(P2, ("; raised to P2: core asset",), ("no adjustment",))),
    ("normal-lowers", Case(tier=NORMAL), Expect(P4, ("; lowered to P4: normal-tier asset",))),
    ("normal-p4-floor", Case(base=P4, tier=NORMAL), Expect(P4, ("no adjustment", "not lowered (already P4): normal-tier asset"))),
    ("normal-security-not-lowered", Case(tier=NORMAL, type=FaultType.SECURITY),
     Expect(P3, ("not lowered (security fault): normal-tier asset",))),
    ("site-count", Case(scope=ScopeInfo(3, 10, 1, 5)), Expect(P2, ("raised to P2: 3 of 10 assets in site north-building failing",))),
    ("site-ratio", Case(scope=ScopeInfo(2, 4, 1, 1)), Expect(P2, ("raised to P2: 2 of 4 assets in site north-building failing",))),
    ("one-of-two-is-not-wide", Case(scope=ScopeInfo(1, 2, 1, 2)), Expect(P3, ("no adjustment",), ("failing",))),
    ("below-threshold", Case(scope=ScopeInfo(2, 10, 2, 5)), Expect(P3, ("no adjustment",))),
    ("siblings", Case(scope=ScopeInfo(1, 10, 2, 3)), Expect(P2, ("raised to P2: 2 of 3 assets under parent core-sw1 failing",))),
    ("scope-at-most-one-level", Case(scope=ScopeInfo(5, 5, 3, 3)),
     Expect(P2, ("raised to P2: 5 of 5 assets in site north-building failing",), ("under parent",))),
    ("exam-day-teaching", Case(role=TEACHING, calendar=EXAM_EVENING),
     Expect(P2, ("raised to P2: exam day (autumn finals) on an asset that serves teaching",))),
    ("class-hours-teaching", Case(role=TEACHING, calendar=LESSONS),
     Expect(P2, ("raised to P2: class hours on an asset that serves teaching",))),
    ("exam-and-class-hours-one-level", Case(role=TEACHING, calendar=EXAM), Expect(P2, ("exam day (autumn finals)",), ("class hours",))),
    ("holiday-lowers-teaching", Case(role=TEACHING, calendar=NATIONAL_DAY), Expect(P4, ("lowered to P4: holiday (National Day)",))),
    ("weekend-lowers-teaching", Case(role=TEACHING, calendar=SATURDAY), Expect(P4, ("lowered to P4: weekend",))),
    ("school-break-lowers-teaching", Case(role=TEACHING, calendar=SUMMER), Expect(P4, ("lowered to P4: school break",))),
    ("holiday-not-for-security", Case(role=TEACHING, calendar=NATIONAL_DAY, type=FaultType.SECURITY),
     Expect(P3, ("no adjustment", "not lowered (security fault): holiday (National Day)"))),
    ("holiday-not-for-core", Case(tier=CORE, role="", calendar=NATIONAL_DAY),
     Expect(P2, ("raised to P2: core asset", "not lowered (core asset): holiday (National Day)"))),
    ("calendar-ignores-non-teaching", Case(role="finance", calendar=EXAM), Expect(P3, ("no adjustment",), ("exam",))),
    ("holiday-ignores-non-teaching", Case(role="finance", calendar=NATIONAL_DAY), Expect(P3, ("no adjustment",), ("holiday",))),
    ("class-hours-core", Case(tier=CORE, role="", calendar=LESSONS),
     Expect(P1, ("raised to P2: core asset; raised to P1: class hours on a core asset",))),
    ("long-duration", Case(lasted=5 * HOUR), Expect(P2, ("raised to P2: lasting 5h (over 4h)",))),
    ("duration-boundary-inclusive", Case(lasted=4 * HOUR), Expect(P2, ("lasting 4h (over 4h)",))),
    ("duration-just-short", Case(lasted=4 * HOUR - 60), Expect(P3, ("no adjustment",))),
    ("normal-lowered-then-raised", Case(tier=NORMAL, role=TEACHING, calendar=LESSONS),
     Expect(P3, ("lowered to P4: normal-tier asset; raised to P3: class hours",), ("no adjustment",))),
    ("normal-holiday-floor", Case(tier=NORMAL, role=TEACHING, calendar=SATURDAY),
     Expect(P4, ("lowered to P4: normal-tier asset; not lowered (already P4): weekend",))),
    ("two-level-limit", Case(base=P4, tier=CORE, role=TEACHING, scope=ScopeInfo(4, 4, 1, 1), calendar=EXAM, lasted=30 * HOUR),
     Expect(P2, ("raised to P3: core asset", "raised to P2: 4 of 4 assets",
                 "not raised (at most 2 levels above P4): exam day (autumn finals)",
                 "not raised (at most 2 levels above P4): lasting 1d 6h (over 4h)"))),
    ("cap-at-p1", Case(base=P2, tier=CORE, role=TEACHING, calendar=EXAM, lasted=5 * HOUR),
     Expect(P1, ("raised to P1: core asset", "not raised (already P1): exam day (autumn finals)",
                 "not raised (already P1): lasting 5h (over 4h)"))),
    ("p1-core-stays", Case(base=P1, tier=CORE), Expect(P1, ("P1 from rule", "no adjustment; not raised (already P1): core asset"))),
]


@pytest.mark.parametrize(("case", "expect"), [pytest.param(c, e, id=name) for name, c, e in CASES])
def test_classification_table(case: Case, expect: Expect) -> None:
    result = case.run()
    assert (result.severity, result.base, result.type) == (expect.severity, case.base, case.type), result.reason
    for fragment in expect.fragments:
        assert fragment in result.reason, result.reason
    for fragment in expect.absent:
        assert fragment not in result.reason, result.reason


def test_the_reason_reads_as_one_sentence_with_every_step_in_order() -> None:
    result = Case(tier=CORE, role=TEACHING, calendar=EXAM).run()
    assert result.reason == (
        "P3 from rule filesystem_usage (filesystem / is 92% full); raised to P2: core asset; "
        "raised to P1: exam day (autumn finals) on an asset that serves teaching"
    )
    assert result.steps == ("raised to P2: core asset", "raised to P1: exam day (autumn finals) on an asset that serves teaching")


def test_nothing_applies_says_no_adjustment() -> None:
    result = Case().run()
    assert result.reason == "P3 from rule filesystem_usage (filesystem / is 92% full); no adjustment"
    assert result.steps == ()


@pytest.mark.parametrize("case", [
    Case(base=INFO, tier=CORE, role=TEACHING, scope=ScopeInfo(9, 9, 9, 9), calendar=EXAM, lasted=99 * HOUR),
    Case(base=INFO, tier=NORMAL, role=TEACHING, calendar=NATIONAL_DAY),
])
def test_info_stays_info(case: Case) -> None:
    result = case.run()
    assert (result.severity, result.steps) == (INFO, ())
    assert result.reason.startswith("info from rule filesystem_usage (filesystem / is 92% full); no adjustment")


def test_the_policy_is_a_parameter() -> None:
    strict = ClassifyPolicy(teaching_roles=frozenset({"finance"}), scope_min_assets=2, long_duration=HOUR)
    finding = Finding("ping", "srv1", "", FaultType.NETWORK, P4, None, "host unreachable", since=NOW - 2 * HOUR)
    asset = AssetContext(name="srv1", site="annex", role="finance", tier=IMPORTANT)
    result = classify(finding, asset, ScopeInfo(2, 50, 1, 1), LESSONS, now=NOW, policy=strict)
    assert result.severity is P2  # scope P3, then the two-level limit holds class hours and duration
    assert result.steps == (
        "raised to P3: 2 of 50 assets in site annex failing",
        "raised to P2: class hours on an asset that serves teaching",
        "not raised (at most 2 levels above P4): lasting 2h (over 1h)",
    )


# ---- properties ----------------------------------------------------------------------------------

LEVELS = [P1, P2, P3, P4]
calendars = st.builds(
    CalendarState,
    exam_day=st.sampled_from([None, "autumn finals"]),
    class_hours=st.booleans(),
    holiday=st.sampled_from([None, "National Day", WEEKEND, SCHOOL_BREAK]),
    in_term=st.booleans(),
)
scopes = st.builds(
    ScopeInfo, st.integers(0, 12), st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)
)
cases = st.builds(
    Case,
    base=st.sampled_from([*LEVELS, INFO]),
    tier=st.sampled_from(list(Tier)),
    role=st.sampled_from(["", "lms", "wifi", "finance", "exam"]),
    type=st.sampled_from(list(FaultType)),
    scope=scopes,
    calendar=calendars,
    lasted=st.floats(-HOUR, 72 * HOUR),
    parents=st.sampled_from([(), ("core-sw1",), ("a", "b")]),
)


@given(cases)
def test_properties(case: Case) -> None:
    result = case.run()
    assert result == case.run()  # deterministic
    if case.base is INFO:
        assert result.severity is INFO
        return
    assert P1 <= result.severity <= P4
    assert result.severity >= case.base - 2  # at most two levels above the base
    if case.type is FaultType.SECURITY or case.tier is CORE:
        assert result.severity <= case.base  # never lowered
    if case.tier is not NORMAL and case.calendar.holiday is None:
        assert result.severity <= case.base  # only tier and calendar lower
    for step in result.steps:
        if step.startswith("lowered"):
            cause = step.split(": ", 1)[1]
            assert cause in ("normal-tier asset", WEEKEND, SCHOOL_BREAK) or cause.startswith("holiday ("), step
    assert result.reason.endswith("; ".join(result.steps))
