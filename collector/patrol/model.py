"""The patrol checklist file schema (``runbooks/patrol/*.yaml``): sections of items, each with a method.

An item's ``method`` is a tagged struct (``kind: metric``, ``snmp_get``, ``cli``, ``ssh``, ``http``
or ``manual``); :data:`METHODS` maps each kind to its struct. What one struct can check alone
(a known measurement, a regular expression, a numeric OID) it checks in ``__post_init__``; what
spans an item's fields (an automated item needs ``applies_to`` and ``on_abnormal``) is
:func:`check_item`, which the loader calls so that the error can name the item.

Texts people read (``check``, ``standard``, titles) are :data:`Localized`: one string, or one per
language with keys ``en``, ``zh-CN``, ``zh-TW`` and at least ``en``.

A patrol only looks: ``cli`` commands must be show/display commands, and nothing here runs anything.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter  # type: ignore[import-untyped]  # no stubs
from msgspec import Meta, Struct

from collector.domain import AssetContext, FaultType, Severity
from collector.rules.measure import METRICS
from schoolops.units import Seconds
from schoolops.wire import AssetName, Label, Tier

Slug = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]*\Z", max_length=64)]
Text = Annotated[str, Meta(min_length=1, max_length=2048)]
Localized: TypeAlias = Text | dict[str, Text]
"""One text for every reader, or one per language (``en`` required)."""

LANGUAGES = ("en", "zh-CN", "zh-TW")
ASSET_KINDS = ("server", "network", "service", "sensor")
DEFAULT_SCHEDULE = "0 8 * * *"  # every day at 08:00, before the first lesson
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_TIMEOUT = Seconds(30)

_PROGRAM = re.compile(r"^[A-Za-z0-9_./+-]+\Z")
_OID = re.compile(r"^\.?[0-9]+(?:\.[0-9]+)+\Z")
_READ_ONLY_VERBS = ("show", "display")  # and their abbreviations: sh, sho, dis, disp...


def check_localized(value: str | dict[str, str]) -> str | None:
    """Why ``value`` is not a valid :data:`Localized` text, or None."""
    if isinstance(value, str):
        return None
    unknown = [key for key in value if key not in LANGUAGES]
    if unknown or "en" not in value:
        extra = f" (unknown: {', '.join(unknown)})" if unknown else ""
        return f"by language, with keys {', '.join(LANGUAGES)} and at least en{extra}"
    return None


def text_for(value: str | dict[str, str], language: str) -> str:
    """The text in ``language``; else in another variant of it (zh-TW → zh-CN); else English."""
    if isinstance(value, str):
        return value
    if language in value:
        return value[language]
    base = language.split("-")[0]
    same = next((text for key, text in value.items() if key.split("-")[0] == base), None)
    return same if same is not None else value["en"]


def _localized(**texts: str | dict[str, str]) -> None:
    for key, value in texts.items():
        problem = check_localized(value)
        if problem:
            raise ValueError(f"{key}: {problem}")


def _check_regex(key: str, pattern: str | None) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{key}: {pattern!r} is not a regular expression: {exc}") from None


def _check_limits(minimum: float | None, maximum: float | None, equals: float | None, *, alone: bool = True) -> None:
    for key, value in (("min", minimum), ("max", maximum), ("equals", equals)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{key}: must be a finite number")
    if equals is not None and (minimum is not None or maximum is not None):
        raise ValueError("equals: give equals alone, or min and/or max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ValueError(f"min: {minimum:g} is above max ({maximum:g}): nothing could be normal")
    if alone and minimum is None and maximum is None and equals is None:
        raise ValueError("give the standard: at least one of min, max or equals")


class Selector(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Which assets an item applies to: every given key must match; a list is an OR; labels all match.

    An empty selector (``applies_to: {}``) matches every asset.
    """

    kind: Annotated[tuple[Literal["server", "network", "service", "sensor"], ...], Meta(min_length=1)] | None = None
    site: Annotated[tuple[Label, ...], Meta(min_length=1)] | None = None
    role: Annotated[tuple[Label, ...], Meta(min_length=1)] | None = None
    tier: Annotated[tuple[Tier, ...], Meta(min_length=1)] | None = None
    labels: dict[Label, str] | None = None
    names: Annotated[tuple[AssetName, ...], Meta(min_length=1)] | None = None

    def matches(self, asset: Mapping[str, str]) -> bool:
        """``asset``: name, kind, site, role, tier and ``labels.X`` keys (see :func:`asset_facts`)."""
        pairs: tuple[tuple[tuple[str, ...] | None, str], ...] = (
            (self.kind, "kind"), (self.site, "site"), (self.role, "role"), (self.tier, "tier"), (self.names, "name"),
        )
        if any(allowed is not None and asset.get(key, "") not in allowed for allowed, key in pairs):
            return False
        return all(asset.get(f"labels.{key}") == value for key, value in (self.labels or {}).items())


def asset_facts(asset: AssetContext) -> dict[str, str]:
    """What :meth:`Selector.matches` looks at, from an asset's context."""
    facts = {"name": asset.name, "kind": asset.kind, "site": asset.site, "role": asset.role, "tier": str(asset.tier)}
    facts.update({f"labels.{key}": value for key, value in asset.labels.items()})
    return facts


class _Method(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, tag_field="kind"):
    @property
    def kind(self) -> str:
        tag = type(self).__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    @property
    def automated(self) -> bool:
        return not isinstance(self, ManualMethod)


class MetricMethod(_Method, tag="metric", frozen=True):
    """A measurement from the asset's latest report (:data:`collector.rules.measure.METRICS`)."""

    metric: str
    key: Annotated[str, Meta(max_length=256)] | None = None  # a mountpoint, a probe name...; None: every key
    min: float | None = None
    max: float | None = None
    equals: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric: {unknown_measurement(self.metric)}")
        _check_limits(self.min, self.max, self.equals)


class SnmpGetMethod(_Method, tag="snmp_get", frozen=True):
    """One OID read from the device: a number within min/max/equals, or a text equal to ``expect``."""

    oid: str
    min: float | None = None
    max: float | None = None
    equals: float | None = None
    expect: Text | None = None
    timeout: Seconds = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not _OID.match(self.oid):
            raise ValueError(f"oid: {self.oid!r} is not a numeric OID such as 1.3.6.1.2.1.1.3.0")
        _check_limits(self.min, self.max, self.equals, alone=False)
        if self.expect is not None and (self.min is not None or self.max is not None or self.equals is not None):
            raise ValueError("expect: give expect (a text) or min/max/equals (a number), not both")
        if self.expect is None and self.min is None and self.max is None and self.equals is None:
            raise ValueError("give the standard: at least one of min, max or equals (or expect, a text)")


class CliMethod(_Method, tag="cli", frozen=True):
    """One show/display command on a network device; its output must match ``expect`` (and not ``reject``)."""

    command: Text
    expect: Text
    reject: Text | None = None  # a regular expression the output must not match
    timeout: Seconds = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if "\n" in self.command or "\r" in self.command:
            raise ValueError(f"command: one command, without line breaks: {self.command!r}")
        verb = self.command.split()[0].lower() if self.command.split() else ""
        if not any(full.startswith(verb) and len(verb) >= 2 for full in _READ_ONLY_VERBS):
            raise ValueError(f"command: a patrol only looks: use a show or display command, not {self.command!r}")
        _check_regex("expect", self.expect)
        _check_regex("reject", self.reject)


class SshMethod(_Method, tag="ssh", frozen=True):
    """A program run on the server over SSH: exit status 0, and the output matching ``expect`` if given."""

    argv: Annotated[tuple[Text, ...], Meta(min_length=1)]
    expect: Text | None = None
    reject: Text | None = None  # a regular expression the output must not match
    timeout: Seconds = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not _PROGRAM.match(self.argv[0]):
            raise ValueError(
                f"argv: commands are argument lists, never shell strings: argv[0] {self.argv[0]!r} must be "
                "one program name or path, e.g. [systemctl, is-active, nginx]"
            )
        _check_regex("expect", self.expect)
        _check_regex("reject", self.reject)


class HttpMethod(_Method, tag="http", frozen=True):
    """A GET of ``url``: the status must be ``expect_status`` and the body contain ``body_contains``."""

    url: Annotated[str, Meta(pattern=r"^https?://\S+\Z")]
    expect_status: Annotated[int, Meta(ge=100, le=599)] = 200
    body_contains: Text | None = None
    timeout: Seconds = DEFAULT_TIMEOUT


class ManualMethod(_Method, tag="manual", frozen=True):
    """A person looks and fills the result in (normal or abnormal, with a note)."""


Method: TypeAlias = MetricMethod | SnmpGetMethod | CliMethod | SshMethod | HttpMethod | ManualMethod
METHODS: dict[str, type[Method]] = {
    "metric": MetricMethod, "snmp_get": SnmpGetMethod, "cli": CliMethod, "ssh": SshMethod, "http": HttpMethod,
    "manual": ManualMethod,
}


def unknown_measurement(name: str) -> str:
    close = difflib.get_close_matches(name, list(METRICS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown measurement {name!r}: {hint}known: {', '.join(METRICS)}"


class OnAbnormal(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What an abnormal result is: the fault it opens (type, severity) and the runbook that handles it."""

    type: FaultType
    severity: Literal["P1", "P2", "P3", "P4"]
    runbook: Slug | None = None

    @property
    def level(self) -> Severity:
        return Severity.parse(self.severity)


class Item(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    id: Slug
    check: Localized  # what is checked
    standard: Localized  # the standard, for people
    method: Method
    applies_to: Selector | None = None  # None: a manual item about the site as a whole
    on_abnormal: OnAbnormal | None = None  # required for automated items

    def __post_init__(self) -> None:
        _localized(check=self.check, standard=self.standard)

    @property
    def automated(self) -> bool:
        return self.method.automated


def check_item(item: Item) -> tuple[str, str] | None:
    """The first problem across an item's fields, as ``(key, reason)``; None if it is sound."""
    if item.automated and item.applies_to is None:
        return "applies_to", (f"a {item.method.kind} item needs applies_to: which assets it checks, "
                              "e.g. {kind: [server]} (only manual items may be about the site as a whole)")
    if item.automated and item.on_abnormal is None:
        return "on_abnormal", (f"a {item.method.kind} item needs on_abnormal: the fault an abnormal result "
                               "opens, e.g. {type: capacity, severity: P3}")
    return None


class RawSection(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A section with its items still raw, so that each item's errors can name the item."""

    id: Slug
    title: Localized
    items: Annotated[list[dict[str, Any]], Meta(min_length=1)]

    def __post_init__(self) -> None:
        _localized(title=self.title)


class ChecklistFile(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One file, with its sections still raw."""

    name: Slug
    title: Localized
    sections: Annotated[list[dict[str, Any]], Meta(min_length=1)]
    schedule: Text = DEFAULT_SCHEDULE
    timezone: Text = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        _localized(title=self.title)
        problem = check_schedule(self.schedule)
        if problem:
            raise ValueError(f"schedule: {problem}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}: use a zoneinfo name such as "
                             "Asia/Shanghai") from None


def check_schedule(expression: str) -> str | None:
    """Why ``expression`` is not a usable cron schedule, or None."""
    usage = "write minute hour day-of-month month day-of-week, e.g. '0 8 * * 1-5' (08:00 on weekdays)"
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return f"{expression!r} is not a cron expression: {usage}"
    try:
        croniter(expression, datetime(2024, 1, 1)).get_next(datetime)
    except (CroniterBadCronError, CroniterBadDateError):
        return f"{expression!r} never happens: {usage}"
    return None


class Section(Struct, kw_only=True, frozen=True):
    id: str
    title: str | dict[str, str]
    items: tuple[Item, ...]


class Checklist(Struct, kw_only=True, frozen=True):
    name: str
    title: str | dict[str, str]
    sections: tuple[Section, ...]
    schedule: str = DEFAULT_SCHEDULE
    timezone: str = DEFAULT_TIMEZONE
    source: str = ""  # the file it was read from

    def items(self) -> Iterator[tuple[Section, Item]]:
        """Every item with its section, in file order."""
        for section in self.sections:
            for item in section.items:
                yield section, item

    def item(self, item_id: str) -> tuple[Section, Item] | None:
        return next(((s, i) for s, i in self.items() if i.id == item_id), None)

    def next_run(self, after: float) -> float:
        """The unix time of the first scheduled run after ``after``, in the checklist's time zone."""
        here = datetime.fromtimestamp(after, ZoneInfo(self.timezone))
        result: datetime = croniter(self.schedule, here).get_next(datetime)
        return result.timestamp()
