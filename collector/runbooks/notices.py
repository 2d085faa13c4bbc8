"""What runbooks tell people, through the same outbox, channels and languages as every other message.

Three kinds: a ``notify`` step's message (one text, or one per language), a request to approve
(to everyone holding the role), and an escalation (a run failed, or the attempt budget ran out)
to every target of the incident's escalation policy. Each is written to the outbox in one
transaction with its incident event; an escalation is recorded under a key in
``escalation_steps`` (compare-and-set), so it goes out once however often it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from collector.notify.escalator import Escalator, Reach
from collector.notify.model import Language, MessageKind
from collector.notify.oncall import OnCallConfig
from collector.store import incidents as q
from collector.store import outbox

SYSTEM = "schoolops"

PHRASES: dict[str, tuple[str, str, str]] = {  # en, zh-CN, zh-TW
    "subject.escalate": ("[{severity}] Runbook did not fix it: {asset} (incident #{incident})",
                         "【{severity}】处置流程未能解决：{asset}（事件 #{incident}）",
                         "【{severity}】處置流程未能解決：{asset}（事件 #{incident}）"),
    "text.escalate": ("Runbook {runbook} on {asset}: {reason}\nA person needs to take over. Run #{run}.",
                      "处置流程 {runbook}（{asset}）：{reason}\n需要人工接手处理。执行记录 #{run}。",
                      "處置流程 {runbook}（{asset}）：{reason}\n需要人工接手處理。執行記錄 #{run}。"),
    "subject.approve": ("Approval needed: runbook {runbook} on {asset}",
                        "待审批：处置流程 {runbook}（{asset}）",
                        "待審批：處置流程 {runbook}（{asset}）"),
    "text.approve": ("{requested_by} asks the {role} role to approve: {reason}\n"
                     "Approve: schoolops runbooks approve {run} --as YOUR_ID (expires {expires}).",
                     "{requested_by} 请求 {role} 审批：{reason}\n"
                     "批准：schoolops runbooks approve {run} --as 您的ID（{expires} 前有效）。",
                     "{requested_by} 請求 {role} 審批：{reason}\n"
                     "批准：schoolops runbooks approve {run} --as 您的ID（{expires} 前有效）。"),
    "subject.notify": ("Runbook {runbook} on {asset}", "处置流程 {runbook}（{asset}）", "處置流程 {runbook}（{asset}）"),
}
_INDEX = {Language.EN: 0, Language.ZH_CN: 1, Language.ZH_TW: 2}


def phrase(key: str, language: Language, **values: object) -> str:
    return PHRASES[key][_INDEX[language]].format(**values)


@dataclass(frozen=True)
class Sent:
    names: list[str]

    def __str__(self) -> str:
        return ", ".join(self.names)


class RunbookNotices:
    def __init__(self, oncall: OnCallConfig | None, escalator: Escalator | None,
                 on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.oncall, self.escalator, self.on_enqueued = oncall, escalator, on_enqueued

    def send(self, conn: Connection, *, targets: tuple[str, ...] | list[str], incident_id: int | None, key: str,
             kind: MessageKind, severity: int | None, text: Callable[[Language], tuple[str, str]], now: float) -> Sent:
        """Write one message per reached person or channel; ``text(language)`` gives (subject, body)."""
        if self.escalator is None or self.oncall is None:
            return Sent([])
        reaches: list[Reach] = []
        for target in targets:
            for reach in self.escalator.resolve(target, now):
                if reach not in reaches:
                    reaches.append(reach)
        names = []
        for reach in reaches:
            if reach.person is not None:
                if not reach.person.contacts:
                    continue
                language = Language(reach.person.language)
                contact = reach.person.contacts[0]
                channel, address, person_id = contact.channel, contact.address, reach.person.id
                names.append(reach.person.name)
            else:
                language = self.escalator._group_language()
                channel, address, person_id = reach.channel or "", None, ""
                names.append(f"channel {channel}")
            subject, body = text(language)
            outbox.enqueue(conn, incident_id=incident_id, step_key=key, person=person_id, channel=channel,
                           address=address, kind=kind.value, severity=severity, language=language.value,
                           subject=subject, text=body, ack_url=None, created_at=now)
        if names:
            self.on_enqueued()
        return Sent(names)

    def escalation_targets(self, severity_label: str) -> list[str]:
        if self.oncall is None:
            return []
        policy = getattr(self.oncall.escalation.policies, severity_label, None)
        targets: list[str] = []
        for step in policy.steps if policy else []:
            targets.extend(t for t in step.notify if t not in targets)
        return targets or ["primary", "backup"]

    def escalate(self, conn: Connection, *, incident_id: int, key: str, runbook: str, asset: str, run_id: int,
                 reason: str, now: float) -> bool:
        """Escalate the incident once per ``key``: an event on its timeline and a page to its whole chain."""
        incident = q.get_incident(conn, incident_id)
        if incident is None or not outbox.take_step(conn, incident_id, key, now):
            return False
        severity = incident.severity.label

        def text(language: Language) -> tuple[str, str]:
            return (phrase("subject.escalate", language, severity=severity, asset=asset, incident=incident_id),
                    phrase("text.escalate", language, runbook=runbook, asset=asset, reason=reason, run=run_id))

        sent = self.send(conn, targets=self.escalation_targets(severity), incident_id=incident_id, key=key,
                         kind=MessageKind.PAGE, severity=int(incident.severity), text=text, now=now)
        q.add_event(conn, incident_id, now, "escalation", SYSTEM,
                    f"runbook {runbook} (run {run_id}): {reason}: {sent or 'nobody reachable'}",
                    {"step": key, "kind": "runbook", "run": run_id})
        return True
