"""The on-call file: people and how to reach them, channels, the weekly rotation, overrides, escalation.

:func:`load_oncall` is the I/O edge: it reads the YAML, validates each entry with msgspec (errors
name the file, the line and the key, through :mod:`schoolops.conf`), then checks what one entry
cannot say alone: ids unique, every contact on a defined channel, the rotation and overrides naming
on-call people, a director present, escalation targets that exist. The result is plain data;
:func:`on_call_at` and :func:`shifts` are pure functions of it and a time.

How the schedule reads, in the file's ``timezone``:

- The rotation changes hands every week at ``handover`` (``{day: mon, time: "09:00"}``). The week
  holding the date ``start`` runs from the last handover day on or before ``start``; it is
  ``rotation[0]``'s, the next is ``rotation[1]``'s, and so on, cycling (backwards too).
- An override (a swap, a holiday duty) holds from ``start`` (inclusive) to ``end`` (exclusive),
  local times ``"YYYY-MM-DD HH:MM"``, and wins over the rotation. Overrides may not overlap.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml
from msgspec import Meta, Struct, field

from collector.notify.channels.config import ChannelConfig, ChannelId, EmailChannel
from collector.notify.model import Language
from collector.notify.policy import EscalationConfig
from schoolops import ConfigError, conf

Strict: dict[str, Any] = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}
PersonId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]*\Z", max_length=64)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {name: i for i, short in enumerate(WEEKDAYS)
              for name in (short, ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[i])}
WEEK = dt.timedelta(days=7)


class Role(enum.StrEnum):
    DIRECTOR = "director"  # 處室主任: major faults, progress reports; not technical
    ON_CALL = "on-call"  # may stand in the rotation
    OPERATOR = "operator"  # IT staff: patrol rounds, maintenance windows, fault reports
    VIEWER = "viewer"  # reads everything but the audit log; changes nothing
    ADMIN = "admin"  # the system's administrator: everything, the audit log; a second factor on login


class Contact(Struct, **Strict):
    channel: ChannelId
    address: Annotated[str, Meta(min_length=1, max_length=256)] | None = None  # what the channel needs


class Person(Struct, **Strict):
    id: PersonId
    name: Name
    language: Language
    roles: Annotated[tuple[Role, ...], Meta(min_length=1)]
    contacts: tuple[Contact, ...] = ()  # in order of preference: the next is used when a channel is broken

    def has_role(self, role: Role | str) -> bool:
        return role in self.roles


def _time_of_day(value: str | int, key: str) -> dt.time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 09:00 as the base-60 number 540
        raise TypeError(f"{key}: YAML read an unquoted {value // 60}:{value % 60:02d} as the number {value}; "
                         "quote the time, e.g. \"09:00\"")
    hours, _, minutes = value.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"{key}: {value!r} is not a time of day: use HH:MM, from 00:00 to 23:59")
    return dt.time(int(hours), int(minutes))


def _local_moment(value: str, key: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not a local time: use \"YYYY-MM-DD HH:MM\"") from None
    if moment.tzinfo is not None:
        raise ValueError(f"{key}: {value!r} has a UTC offset; write the local time, the file's timezone applies")
    return moment


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {name!r}: use a zoneinfo name such as Asia/Shanghai") from None


class Handover(Struct, **Strict):
    day: str = "mon"
    time: str | int = "09:00"

    def __post_init__(self) -> None:
        if self.day.strip().lower() not in _DAY_NAMES:
            raise ValueError(f"day: unknown weekday {self.day!r}: use {', '.join(WEEKDAYS)}")
        _time_of_day(self.time, "time")

    @property
    def weekday(self) -> int:  # 0 = Monday
        return _DAY_NAMES[self.day.strip().lower()]

    @property
    def at(self) -> dt.time:
        return _time_of_day(self.time, "time")


class Duty(Struct, **Strict):
    primary: PersonId
    backup: PersonId

    def __post_init__(self) -> None:
        if self.primary == self.backup:
            raise ValueError(f"backup: {self.backup!r} is also the primary; the backup must be someone else")


class Override(Duty, **Strict):
    start: str  # local "YYYY-MM-DD HH:MM", inclusive
    end: str  # exclusive
    reason: Name

    def __post_init__(self) -> None:
        super().__post_init__()
        if _local_moment(self.end, "end") <= _local_moment(self.start, "start"):
            raise ValueError(f"end: {self.end} is not after start {self.start}")

    def window(self, zone: ZoneInfo) -> tuple[float, float]:
        return (_local_moment(self.start, "start").replace(tzinfo=zone).timestamp(),
                _local_moment(self.end, "end").replace(tzinfo=zone).timestamp())


class Schedule(Struct, **Strict):
    start: dt.date  # a date in the week where rotation[0] is on duty
    rotation: Annotated[tuple[Duty, ...], Meta(min_length=1)]
    handover: Handover = field(default_factory=Handover)
    overrides: tuple[Override, ...] = ()


class OnCallConfig(Struct, **Strict):
    timezone: str
    people: Annotated[tuple[Person, ...], Meta(min_length=1)]
    schedule: Schedule
    channels: tuple[ChannelConfig, ...] = ()
    escalation: EscalationConfig = field(default_factory=EscalationConfig)

    def __post_init__(self) -> None:
        _zone(self.timezone)


# --- loading ----------------------------------------------------------------------------------------


def load_oncall(path: str | Path) -> OnCallConfig:
    """Read and check the on-call file; raise :class:`ConfigError` naming the file, the line and the key."""
    return parse_oncall(conf.read_config_text(path), source=str(path))


def parse_oncall(text: str, *, source: str = "<oncall>") -> OnCallConfig:
    try:
        config = conf.load_text(text, OnCallConfig, source=source)
    except ConfigError as exc:
        hint = next((h for pattern, h in _HINTS if re.search(pattern, str(exc))), None)
        if hint:
            raise ConfigError(f"{exc}; {hint}") from None
        raise
    problem = next(_problems(config), None)
    if problem is not None:
        key, reason = problem
        # schoolops.conf turns the key's path into FILE:LINE: key (the reason stands apart: conf reads a
        # reason's first word as a field name, and a person's id may be one)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        where = conf.describe_error(msgspec.ValidationError(f"? - at `$.{key}`"), source=source, node=node)
        raise ConfigError(where.removesuffix("?") + reason)
    return config


_HINTS = (  # what msgspec's own messages do not say
    (r"got `datetime`$", 'quote the local time, e.g. "2026-10-01 09:00"'),  # unquoted, YAML reads a timestamp
    (r"\.language: Invalid enum value", f"use {', '.join(Language)}"),
    (r"\.roles\[\d+\]: Invalid enum value", f"use {', '.join(Role)}"),
    (r"people\[\d+\]\.id: Expected `str` matching", "an id is lower-case letters, digits, '.', '_' or '-'"),
)


def _problems(config: OnCallConfig) -> Iterator[tuple[str, str]]:
    """What no single entry can check: (key, reason) for each problem, in file order."""
    channels: dict[str, ChannelConfig] = {}
    for i, channel in enumerate(config.channels):
        if channel.id in channels:
            yield f"channels[{i}].id", f"channel {channel.id!r} is defined twice"
        channels[channel.id] = channel
    people: dict[str, Person] = {}
    for i, person in enumerate(config.people):
        if person.id in people:
            yield f"people[{i}].id", f"person {person.id!r} is listed twice"
        people[person.id] = person
        if not person.contacts and (person.has_role(Role.ON_CALL) or person.has_role(Role.DIRECTOR)):
            yield f"people[{i}].contacts", f"{person.id} has the {'director' if person.has_role(Role.DIRECTOR) else 'on-call'} role but no contact: nobody could reach them"
        for j, contact in enumerate(person.contacts):
            where = f"people[{i}].contacts[{j}]"
            if contact.channel not in channels:
                yield f"{where}.channel", f"unknown channel {contact.channel!r} (defined: {', '.join(channels) or 'none'})"
            elif isinstance(channels[contact.channel], EmailChannel) and "@" not in (contact.address or ""):
                yield f"{where}.address", f"channel {contact.channel} sends email: give an email address"
    if not any(p.has_role(Role.DIRECTOR) for p in config.people):
        yield "people", "nobody has the director role; the regulation reports major faults to the director: add roles: [director] to one person"
    duties = [(f"schedule.rotation[{i}]", d) for i, d in enumerate(config.schedule.rotation)]
    duties += [(f"schedule.overrides[{i}]", o) for i, o in enumerate(config.schedule.overrides)]
    for where, duty in duties:
        for key in ("primary", "backup"):
            name = getattr(duty, key)
            if name not in people:
                yield f"{where}.{key}", f"unknown person {name!r}"
            elif not people[name].has_role(Role.ON_CALL):
                yield f"{where}.{key}", f"{name} does not have the on-call role (roles: {', '.join(people[name].roles)})"
    zone = _zone(config.timezone)
    windows = [o.window(zone) for o in config.schedule.overrides]
    for i, (start, end) in enumerate(windows):
        for j in range(i):
            if start < windows[j][1] and windows[j][0] < end:
                yield f"schedule.overrides[{i}]", f"overlaps overrides[{j}] ({config.schedule.overrides[j].reason}); overrides may not overlap"
    for level in ("P1", "P2", "P3", "P4"):
        for i, step in enumerate(getattr(config.escalation.policies, level).steps):
            for j, target in enumerate(step.notify):
                problem = _target_problem(target, people, channels)
                if problem:
                    yield f"escalation.policies.{level}.steps[{i}].notify[{j}]", problem


def _target_problem(target: str, people: dict[str, Person], channels: dict[str, ChannelConfig]) -> str | None:
    kind, _, name = target.partition(":")
    if kind == "person" and name not in people:
        return f"unknown person {name!r}"
    if kind == "person" and not people[name].contacts:
        return f"{name} has no contact: nobody could reach them"
    if kind == "channel" and name not in channels:
        return f"unknown channel {name!r} (defined: {', '.join(channels) or 'none'})"
    if kind == "role":
        if name not in set(Role):
            return f"unknown role {name!r}: use {', '.join(Role)}"
        if not any(p.has_role(name) for p in people.values()):
            return f"nobody has the role {name!r}"
    return None


# --- lookups (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnDuty:
    primary: Person
    backup: Person
    source: str  # "rotation week 2" (the rotation's 2nd entry) or "override: National Day duty"


@dataclass(frozen=True)
class Shift:
    start: float  # unix time; the shift's true start, which may be before the window asked for
    end: float
    primary: Person
    backup: Person
    source: str


def person(config: OnCallConfig, id: str) -> Person:
    """The person with ``id``; KeyError if the file has nobody by that id."""
    found = next((p for p in config.people if p.id == id), None)
    if found is None:
        raise KeyError(id)
    return found


def people_with_role(config: OnCallConfig, role: Role | str) -> list[Person]:
    return [p for p in config.people if p.has_role(role)]


def directors(config: OnCallConfig) -> list[Person]:
    return people_with_role(config, Role.DIRECTOR)


def on_call_at(config: OnCallConfig, now: float) -> OnDuty:
    """Who is primary and backup at ``now``, and why: an override holding ``now``, else the rotation."""
    zone = _zone(config.timezone)
    for override in config.schedule.overrides:
        start, end = override.window(zone)
        if start <= now < end:
            return _duty(config, override, f"override: {override.reason}")
    handover = _handover_before(config, now, zone)
    index = _rotation_index(config, handover)
    return _duty(config, config.schedule.rotation[index], f"rotation week {index + 1}")


def shifts(config: OnCallConfig, start: float, days: int) -> list[Shift]:
    """Every shift that overlaps ``days`` local days from ``start``, in order: rotation weeks cut by overrides."""
    zone = _zone(config.timezone)
    until = (dt.datetime.fromtimestamp(start, zone) + dt.timedelta(days=max(days, 0))).timestamp()
    cuts = [o.window(zone) for o in config.schedule.overrides]
    found: list[Shift] = []
    handover = _handover_before(config, start, zone)
    while handover.timestamp() < until:
        index = _rotation_index(config, handover)
        following = _at_handover(config, handover.date() + WEEK, zone)
        duty = _duty(config, config.schedule.rotation[index], f"rotation week {index + 1}")
        for piece in _subtract((handover.timestamp(), following.timestamp()), cuts):
            found.append(Shift(piece[0], piece[1], duty.primary, duty.backup, duty.source))
        handover = following
    for override, (o_start, o_end) in zip(config.schedule.overrides, cuts, strict=True):
        duty = _duty(config, override, f"override: {override.reason}")
        found.append(Shift(o_start, o_end, duty.primary, duty.backup, duty.source))
    return sorted((s for s in found if s.start < until and s.end > start), key=lambda s: s.start)


def _duty(config: OnCallConfig, duty: Duty, source: str) -> OnDuty:
    return OnDuty(person(config, duty.primary), person(config, duty.backup), source)


def _at_handover(config: OnCallConfig, day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, config.schedule.handover.at, tzinfo=zone)


def _handover_before(config: OnCallConfig, now: float, zone: ZoneInfo) -> dt.datetime:
    """The last handover at or before ``now``, as a local time."""
    local = dt.datetime.fromtimestamp(now, zone)
    day = local.date() - dt.timedelta(days=(local.weekday() - config.schedule.handover.weekday) % 7)
    handover = _at_handover(config, day, zone)
    return handover if handover.timestamp() <= now else _at_handover(config, day - WEEK, zone)


def _rotation_index(config: OnCallConfig, handover: dt.datetime) -> int:
    start = config.schedule.start
    first = start - dt.timedelta(days=(start.weekday() - config.schedule.handover.weekday) % 7)
    return ((handover.date() - first).days // 7) % len(config.schedule.rotation)


def _subtract(span: tuple[float, float], cuts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    pieces = [span]
    for cut_start, cut_end in cuts:
        pieces = [part for a, b in pieces
                  for part in ((a, min(b, cut_start)), (max(a, cut_end), b)) if part[0] < part[1]]
    return pieces
