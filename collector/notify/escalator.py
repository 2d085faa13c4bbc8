"""Escalation, the shell: every tick, ask the pure core which steps are due and take each once.

Taking a step = inserting its key in ``escalation_steps`` (compare-and-set) and, in the same
transaction, writing one outbox row per recipient with the message in that person's language and,
for pages and reminders, a signed one-click acknowledgement link. A collector killed between two
steps resumes at the next one; one killed inside a step's transaction never took it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection

from collector.domain import Severity
from collector.incidents.lifecycle import IncidentState
from collector.notify import escalation, links, messages
from collector.notify.model import Language, Message
from collector.notify.oncall import OnCallConfig, Person, directors, on_call_at, people_with_role
from collector.store import incidents as q
from collector.store import outbox
from collector.store.tables import incidents, security_reports
from collector.supervise import every

logger = structlog.get_logger("schoolops.escalation")
SYSTEM = "schoolops"
RECENT = 86400.0  # resolved incidents stay candidates this long (closing summaries)


@dataclass(frozen=True)
class Reach:
    """Whom a target resolves to: a person (on their first contact) or a group channel."""

    person: Person | None
    channel: str | None = None


class Escalator:
    def __init__(self, store: object, oncall: OnCallConfig, *, link_key: bytes, public_url: str,
                 link_ttl: float = 86400.0, on_enqueued: Callable[[], None] = lambda: None,
                 critical_roles: frozenset[str] = frozenset(), clock: Callable[[], float] = time.time,
                 tick_interval: float = 1.0) -> None:
        self.store = store
        self.oncall = oncall
        self.link_key = link_key
        self.public_url = public_url.rstrip("/")
        self.link_ttl = link_ttl
        self.on_enqueued = on_enqueued
        self.critical_roles = critical_roles
        self.clock = clock
        self.tick_interval = tick_interval

    async def run(self) -> None:
        await every(self.tick_interval, self.tick, name="escalator")

    async def tick(self) -> None:
        now = self.clock()
        taken = await self.store.run(lambda c: self._tick(c, now))  # type: ignore[attr-defined]
        if taken:
            self.on_enqueued()

    def _tick(self, conn: Connection, now: float) -> int:
        unreported = sa.select(security_reports.c.incident_id).where(security_reports.c.reported_at.is_(None))
        candidates = conn.execute(sa.select(incidents.c.id).where(
            incidents.c.notify_since.is_not(None)
            & (incidents.c.state.in_(q.LIVE) | (incidents.c.resolved_at > now - RECENT)
               | incidents.c.id.in_(unreported)))).scalars().all()  # the duty to report upward outlives the fault
        taken = 0
        for incident_id in candidates:
            incident = q.get_incident(conn, incident_id)
            if incident is None or incident.severity is Severity.INFO:
                continue
            policy = getattr(self.oncall.escalation.policies, incident.severity.label)
            security = self.oncall.escalation.security
            report = outbox.security_report(conn, incident.id)
            facts = escalation.EscalationFacts(
                incident_id=incident.id, severity=incident.severity, type=incident.type, state=incident.state,
                started_at=incident.notify_since, acknowledged_at=incident.acknowledged_at,
                resolved_at=incident.resolved_at, owner=incident.owner, held=incident.hold is not None,
                critical_infrastructure=self._critical(conn, incident),
                security_reported_at=report[1] if report else None,
            )
            done = outbox.steps_taken(conn, incident.id)
            dues = escalation.due(facts, policy, security, done, now)
            if policy.progress_interval and incident.state is not IncidentState.OPEN:
                key = escalation.state_change_key(incident.state)
                if key not in done and incident.state in (IncidentState.ACKNOWLEDGED,):
                    dues.append(escalation.Due(key=key, kind="progress", targets=("director",), due_at=now,
                                               reason=f"the incident was {incident.state.value}"))
            deadline = escalation.security_deadline(facts, security)
            if deadline is not None:
                outbox.start_security_clock(conn, incident.id, deadline)
            for item in dues:
                if outbox.take_step(conn, incident.id, item.key, now):  # compare-and-set: only one taker
                    self._send(conn, incident, item, now)
                    taken += 1
        return taken

    def _critical(self, conn: Connection, incident: q.IncidentRecord) -> bool:
        if not self.critical_roles:
            return False
        from collector.store.tables import assets

        role = conn.execute(sa.select(assets.c.role).where(assets.c.name == incident.asset)).scalar_one_or_none()
        return role in self.critical_roles

    def resolve(self, target: str, now: float) -> list[Reach]:
        duty = on_call_at(self.oncall, now)
        if target == "primary":
            return [Reach(duty.primary)]
        if target == "backup":
            return [Reach(duty.backup)]
        if target == "director":
            return [Reach(p) for p in directors(self.oncall)]
        kind, _, name = target.partition(":")
        if kind == "role":
            return [Reach(p) for p in people_with_role(self.oncall, name)]
        if kind == "person":
            person = next((p for p in self.oncall.people if p.id == name), None)
            return [Reach(person)] if person else []
        if kind == "channel":
            return [Reach(None, name)]
        return []

    def _send(self, conn: Connection, incident: q.IncidentRecord, item: escalation.Due, now: float) -> None:
        faults = q.incident_faults(conn, incident.id)
        timeline = q.events(conn, incident.id)
        reaches: list[tuple[str, Reach]] = []
        for target in item.targets:
            for reach in self.resolve(target, now):
                if reach not in [r for _, r in reaches]:
                    reaches.append((target, reach))
        names = []
        for target, reach in reaches:
            language = Language(reach.person.language) if reach.person else self._group_language()
            ack_url = None
            if reach.person and item.kind in ("page", "reminder") and incident.state is IncidentState.OPEN:
                ack_url = self._link(conn, incident.id, reach.person.id, now)
            message = self._message(conn, incident, faults, timeline, item, language, ack_url, target)
            if reach.person:
                if not reach.person.contacts:
                    continue
                contact = reach.person.contacts[0]
                channel, address, person_id = contact.channel, contact.address, reach.person.id
                names.append(reach.person.name)
            else:
                channel, address, person_id = reach.channel or "", None, ""
                names.append(f"channel {channel}")
            outbox.enqueue(conn, incident_id=incident.id, step_key=item.key, person=person_id, channel=channel,
                           address=address, kind=message.kind.value, severity=int(incident.severity),
                           language=message.language.value, subject=message.subject, text=message.text,
                           ack_url=ack_url, created_at=now)
        boss = {person.id for person in directors(self.oncall)}
        reached_director = any(reach.person is not None and reach.person.id in boss and reach.person.contacts
                               for _, reach in reaches)
        q.add_event(conn, incident.id, now, "escalation", SYSTEM,
                    f"{item.reason}: {', '.join(names) or 'nobody reachable'}",
                    {"step": item.key, "kind": item.kind, "director": reached_director})

    def _message(self, conn: Connection, incident: q.IncidentRecord, faults: list[q.FaultRecord],
                 timeline: list[q.Event], item: escalation.Due, language: Language, ack_url: str | None,
                 target: str) -> Message:
        tz = self.oncall.timezone
        names = {p.id: p.name for p in self.oncall.people}
        if item.kind == "progress":
            number = int(item.key.rsplit(":", 1)[-1]) if item.key.rsplit(":", 1)[-1].isdigit() else 0
            return messages.progress_report(incident, faults, timeline, language=language, tz=tz, number=number,
                                            names=names)
        if item.kind == "summary":
            return messages.closing_summary(incident, faults, timeline, language=language, tz=tz, names=names)
        if item.kind == "security_clock":
            report = outbox.security_report(conn, incident.id)
            assert report is not None  # started before any security step is due
            return messages.security_clock(incident, deadline=report[0], language=language, tz=tz, faults=faults)
        return messages.page(incident, faults, timeline, language=language, tz=tz, ack_url=ack_url,
                             reminder=item.kind == "reminder", step=target, names=names)

    def _group_language(self) -> Language:
        return Language.ZH_CN if self.oncall.timezone.startswith("Asia/Shanghai") else Language.EN

    def _link(self, conn: Connection, incident_id: int, person: str, now: float) -> str:
        nonce = links.new_nonce()
        expires = now + self.link_ttl
        outbox.add_link(conn, nonce, incident_id, person, expires)
        token = links.make_token(self.link_key, incident_id=incident_id, person=person, nonce=nonce, expires_at=expires)
        return f"{self.public_url}/ack/{token}"

