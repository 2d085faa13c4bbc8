"""What people read: pages, reminders, the director's progress reports and closing summary, digests,
a broken channel, the security reporting clock, each in the reader's language.

Pure: data in, :class:`Message` out; times are rendered in the on-call file's time zone (``tz``),
never read from a clock. Written for a non-technical reader: what is wrong, where, since when, how
severe and why, what has been done, what the reader should do. Every fixed phrase is in one table,
:data:`~collector.notify.phrases.PHRASES` (language → key → template); Simplified and Traditional
Chinese are written out separately (磁盘/磁碟, 确认/確認, 处理/處理), never converted character by
character.

What is wrong is said per rule id (``rule.filesystem_usage``) with the fault's key and value;
a rule without a phrase here (a school's own rule, a fault reported by a person) keeps its
summary as written. The classification reason (English, from :mod:`collector.classify`) is
re-worded step by step; a step this module does not know is kept as written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from collector.domain import Severity
from collector.notify.model import Language, Message, MessageKind
from collector.notify.phrases import PHRASES
from collector.store.incidents import Event, FaultRecord, IncidentRecord

MAX_SUBJECT = 120
MAX_DONE = 8  # timeline entries shown; older ones are counted
SYSTEM_ACTORS = frozenset({"schoolops", "system"})
# timeline kinds that are bookkeeping (decisions, deliveries), not something done about the fault
_QUIET_EVENTS = frozenset({"opened", "fault_fired", "notify", "held", "consequence", "flapping", "flapping_stopped",
                           "escalation", "delivered", "delivery_retry", "delivery_fallback", "delivery_given_up",
                           "notification_merged"})


@dataclass(frozen=True)
class _Reader:
    """Whom a message is for: their language, the time zone to show, and people's names by id."""

    language: Language
    tz: str = "UTC"
    names: Mapping[str, str] = field(default_factory=dict)

    def t(self, key: str, **values: object) -> str:
        return PHRASES[self.language][key].format(**values)

    def time(self, ts: float, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz)).strftime(fmt)

    def who(self, actor: str | None) -> str:
        if actor in SYSTEM_ACTORS:
            return self.t("actor.system")
        return self.names.get(actor or "", actor or "?")

    def duration(self, seconds: float) -> str:
        minutes = int(seconds // 60)
        if minutes == 0:
            return self.t("unit.s", n=max(0, int(seconds)))
        days, minutes = divmod(minutes, 1440)
        hours, minutes = divmod(minutes, 60)
        parts = [(days, "unit.d"), (hours, "unit.h"), (minutes, "unit.min")]
        return " ".join(self.t(unit, n=n) for n, unit in parts if n)

    def severity(self, severity: Severity) -> str:
        return self.t("severity", label=severity.label, name=self.t(f"severity.{severity.name}"))

    def subject(self, key: str, **values: object) -> str:
        text = " ".join(self.t(key, **values).split())  # one line
        return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


# --- what is wrong, and why it is this severe ------------------------------------------------------


def _fault_what(fault: FaultRecord, r: _Reader) -> str:
    template = PHRASES[r.language].get(f"rule.{fault.rule}")
    if template is None:
        return fault.summary
    try:
        return template.format(key=fault.key, value=fault.value, duration=r.duration(fault.value or 0))
    except (TypeError, ValueError):  # no value where the phrase needs one
        return fault.summary


def _main_fault(incident: IncidentRecord, faults: list[FaultRecord]) -> FaultRecord | None:
    mine = [f for f in faults if f.rule == incident.rule and f.asset == incident.asset]
    return next((f for f in mine if f.active), mine[0] if mine else None)


def _what(incident: IncidentRecord, faults: list[FaultRecord], r: _Reader) -> str:
    main = _main_fault(incident, faults)
    if main is not None:
        return _fault_what(main, r)
    return incident.title.removeprefix(f"{incident.asset}: ") if incident.asset else incident.title


def _place(incident: IncidentRecord) -> str:
    return incident.asset or incident.site or "-"


_HEAD = re.compile(r"^(?P<base>P\d|info) from rule (?P<rule>\S+) \(.*\)(?:; no adjustment)?$", re.DOTALL)
_STEP = re.compile(r"^(?P<verb>raised|lowered) to (?P<level>P\d): (?P<cause>.*)$", re.DOTALL)
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"^core asset$", "cause.core"),
    (r"^normal-tier asset$", "cause.normal"),
    (r"^(?P<failing>\d+) of (?P<total>\d+) assets in (?:site (?P<where>.+)|the site) failing$", "cause.site"),
    (r"^(?P<failing>\d+) of (?P<total>\d+) assets under (?:parent (?P<where>.+)|the same parent) failing$", "cause.parent"),
    (r"^exam day \((?P<name>.*)\) on .*$", "cause.exam"),
    (r"^class hours on .*$", "cause.class"),
    (r"^weekend$", "cause.weekend"),
    (r"^school break$", "cause.break"),
    (r"^holiday \((?P<name>.*)\)$", "cause.holiday"),
    (r"^lasting (?P<lasted>[\dhdms ]+) \(over .*\)$", "cause.lasting"),
))
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _cause(text: str, r: _Reader) -> str:
    for pattern, key in _CAUSES:
        m = pattern.match(text)
        if m is None:
            continue
        values = {k: v for k, v in m.groupdict().items() if v is not None}
        if key in ("cause.site", "cause.parent") and "where" not in values:
            values["where"] = r.t("cause.this_site" if key == "cause.site" else "cause.same_parent")
        if "lasted" in values:
            seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", values.pop("lasted")))
            values["duration"] = r.duration(seconds)
        return r.t(key, **values)
    return text


def _why(reason: str, r: _Reader) -> str:
    """The classification reason in plain words: the base, then each step that moved the severity."""
    head, *steps = reason.split("; ")
    m = _HEAD.match(head)
    if m is None:
        return reason
    key = "why.reported" if m.group("rule") == "manual_report" else "why.base"
    parts = [r.t(key, severity=r.severity(Severity.parse(m.group("base"))))]
    for step in steps:
        if step == "no adjustment" or step.startswith(("not raised", "not lowered")):
            continue  # a rule that did nothing changes nothing for the reader
        s = _STEP.match(step)
        parts.append(step if s is None else r.t(f"why.{s.group('verb')}", cause=_cause(s.group("cause"), r),
                                               severity=r.severity(Severity.parse(s.group("level")))))
    return r.t("why.join").join(parts)


# --- what has been done ----------------------------------------------------------------------------


def _event(event: Event, faults: list[FaultRecord], r: _Reader) -> str | None:
    when = r.time(event.at, "%m-%d %H:%M")
    if event.kind in _QUIET_EVENTS:
        return None
    if event.kind == "resolve" and event.actor in SYSTEM_ACTORS:
        return r.t("event.resolve_auto", time=when)
    if event.kind == "severity_changed" and isinstance(event.data.get("to"), str):
        return r.t("event.severity_changed", time=when, severity=r.severity(Severity.parse(event.data["to"])))
    if event.kind == "fault_cleared":
        fault = next((f for f in faults if f.fingerprint == event.data.get("fault")), None)
        what = f"{fault.asset} {_fault_what(fault, r)}" if fault else event.text.removeprefix("cleared: ")
        return r.t("event.fault_cleared", time=when, what=what)
    if event.kind.startswith("runbook"):
        return r.t("event.runbook", time=when, text=event.text)
    if f"event.{event.kind}" in PHRASES[r.language]:
        line = r.t(f"event.{event.kind}", time=when, actor=r.who(event.actor), text=event.text)
        note = event.data.get("note") if event.kind != "note" else None
        return f"{line}: {note}" if isinstance(note, str) and note else line
    return f"{when} {event.text}"


def _done(timeline: list[Event], faults: list[FaultRecord], r: _Reader) -> list[str]:
    lines = [line for e in timeline if (line := _event(e, faults, r))]
    if not lines:
        return [r.t("line.nothing_done")]
    shown = lines[-MAX_DONE:]
    earlier = [r.t("line.earlier", n=len(lines) - len(shown))] if len(lines) > len(shown) else []
    return [r.t("line.done"), *(f"- {line}" for line in earlier + shown)]


def _facts(incident: IncidentRecord, faults: list[FaultRecord], r: _Reader) -> list[str]:
    """What, where, since when, how severe and why: the head of every incident message."""
    main = _main_fault(incident, faults)
    where = (r.t("line.where_site", asset=incident.asset, site=incident.site) if incident.asset and incident.site
             else r.t("line.where", asset=_place(incident)))
    lines = [
        r.t("line.what", what=_what(incident, faults, r)),
        where,
        r.t("line.since", time=r.time(main.since if main else incident.opened_at)),
        r.t("line.severity", severity=r.severity(incident.severity), type=r.t(f"type.{incident.type.value}")),
        r.t("line.why", why=_why(incident.reason, r)),
    ]
    others = sorted({f.asset for f in faults if f.asset and f.asset != incident.asset})
    if others:
        shown = ", ".join(others[:5]) + (f" (+{len(others) - 5})" if len(others) > 5 else "")
        lines.append(r.t("line.also", assets=shown))
    return lines


def _subject(key: str, incident: IncidentRecord, faults: list[FaultRecord], r: _Reader, **values: object) -> str:
    return r.subject(key, severity=r.severity(incident.severity), place=_place(incident),
                     what=_what(incident, faults, r), **values)


def _director_todo(incident: IncidentRecord, r: _Reader) -> str:
    return r.t("todo.director_p1" if incident.severity is Severity.P1 else "todo.director")


# --- the messages ----------------------------------------------------------------------------------


def page(incident: IncidentRecord, faults: list[FaultRecord], timeline: list[Event], *, language: Language, tz: str,
         ack_url: str | None, reminder: bool = False, step: str = "", names: Mapping[str, str] | None = None) -> Message:
    """An incident needs someone. ``step`` is the escalation target that reached this reader
    (``primary``, ``backup``, ``director``, ``role:…``, ``person:…``, ``channel:…``; "" when unknown):
    the director is told what to decide instead of being asked to acknowledge. ``names`` maps
    person ids (timeline actors, the owner) to the names people know."""
    r = _Reader(language, tz, names or {})
    owner = r.who(incident.owner) if incident.owner else None
    lines: list[str] = []
    if reminder:
        lines.append(r.t("reminder.unresolved", owner=owner) if owner else r.t("reminder.unacked"))
    if step == "backup" and owner is None:
        lines.append(r.t("step.backup"))
    lines += [*_facts(incident, faults, r), *_done(timeline, faults, r)]
    if step == "director":
        lines.append(_director_todo(incident, r))
    elif owner:
        lines.append(r.t("todo.resolve", owner=owner, id=incident.id))
    else:
        lines.append(r.t("todo.ack_link", url=ack_url) if ack_url else r.t("todo.ack_cli", id=incident.id))
    lines.append(r.t("line.incident", id=incident.id))
    subject = _subject("subject.reminder" if reminder else "subject.page", incident, faults, r)
    return Message(kind=MessageKind.REMINDER if reminder else MessageKind.PAGE, language=language, subject=subject,
                   text="\n".join(lines), severity=incident.severity, incident_id=incident.id, ack_url=ack_url)


def progress_report(incident: IncidentRecord, faults: list[FaultRecord], timeline: list[Event], *, language: Language,
                    tz: str, number: int, names: Mapping[str, str] | None = None) -> Message:
    """The director's timed report while a major incident is open: where it stands, what was done."""
    r = _Reader(language, tz, names or {})
    if incident.resolved_at is not None:
        status = r.t("status.resolved", time=r.time(incident.resolved_at))
    elif incident.acknowledged_at is not None:
        status = r.t("status.acknowledged", owner=r.who(incident.owner or incident.acknowledged_by),
                     time=r.time(incident.acknowledged_at, "%H:%M"))
    else:
        status = r.t("status.open")
    active = sum(1 for f in faults if f.active)
    lines = [status, *_facts(incident, faults, r), r.t("status.faults", active=active, cleared=len(faults) - active),
             *_done(timeline, faults, r), _director_todo(incident, r), r.t("line.incident", id=incident.id)]
    return Message(kind=MessageKind.PROGRESS, language=language, subject=_subject("subject.progress", incident, faults, r,
                   number=number), text="\n".join(lines), severity=incident.severity, incident_id=incident.id)


def closing_summary(incident: IncidentRecord, faults: list[FaultRecord], timeline: list[Event], *, language: Language,
                    tz: str, names: Mapping[str, str] | None = None) -> Message:
    """When a major incident is resolved: how long it lasted, what was done, what the rules still ask."""
    r = _Reader(language, tz, names or {})
    main = _main_fault(incident, faults)
    lines: list[str] = []
    if incident.resolved_at is not None:
        began = main.since if main else incident.opened_at
        lines.append(r.t("summary.resolved", time=r.time(incident.resolved_at), who=r.who(incident.resolved_by),
                         duration=r.duration(incident.resolved_at - began)))
    lines += [*_facts(incident, faults, r), *_done(timeline, faults, r)]
    if incident.rca:
        lines.append(r.t("summary.rca", rca=incident.rca))
    else:
        lines.append(r.t("summary.rca_due" if incident.severity.is_major else "summary.nothing_due"))
    lines.append(r.t("line.incident", id=incident.id))
    return Message(kind=MessageKind.SUMMARY, language=language, subject=_subject("subject.summary", incident, faults, r),
                   text="\n".join(lines), severity=incident.severity, incident_id=incident.id)


def digest(messages: list[Message], *, language: Language) -> Message:
    """Several messages for one reader as one (a robot takes 20 a minute): a count, then each subject with
    its first lines and its acknowledgement link."""
    r = _Reader(language)
    lines = [r.t("digest.count", count=len(messages))]
    for number, message in enumerate(messages, start=1):
        excerpt = message.text.splitlines()[:2]
        lines += [f"{number}. {message.subject}", *(f"   {line}" for line in excerpt)]
        if message.ack_url and not any(message.ack_url in line for line in excerpt):
            lines.append("   " + r.t("digest.ack", url=message.ack_url))
    severities = [m.severity for m in messages if m.severity is not None]
    subject = r.subject("subject.digest", count=len(messages), first=messages[0].subject if messages else "")
    return Message(kind=MessageKind.DIGEST, language=language, subject=subject, text="\n".join(lines),
                   severity=min(severities) if severities else None)


def channel_broken(channel_id: str, error: str, *, language: Language) -> Message:
    r = _Reader(language)
    lines = [r.t("broken.what", channel=channel_id, error=" ".join(error.split())), r.t("broken.fallback"),
             r.t("broken.todo")]
    return Message(kind=MessageKind.CHANNEL_BROKEN, language=language,
                   subject=r.subject("subject.channel_broken", channel=channel_id), text="\n".join(lines))


def security_clock(incident: IncidentRecord, *, deadline: float, language: Language, tz: str,
                   faults: list[FaultRecord] | None = None) -> Message:
    """A security incident must be reported upward by ``deadline``: tell the director, plainly.
    ``faults`` (optional) lets "what" be said in the reader's language instead of the title's."""
    r = _Reader(language, tz)
    lines = [r.t("security.deadline", deadline=r.time(deadline)), *_facts(incident, faults or [], r),
             r.t("security.rule"), r.t("security.todo"), r.t("line.incident", id=incident.id)]
    subject = r.subject("subject.security", severity=r.severity(incident.severity),
                        deadline=r.time(deadline, "%m-%d %H:%M"), place=_place(incident))
    return Message(kind=MessageKind.SECURITY_CLOCK, language=language, subject=subject, text="\n".join(lines),
                   severity=incident.severity, incident_id=incident.id)
