"""What people read: pages, reminders, the director's progress reports and closing summary, digests,
a broken channel, the security reporting clock, each in the reader's language.

Pure: data in, :class:`Message` out; times are rendered in the on-call file's time zone (``tz``),
never read from a clock. Written for a non-technical reader: what is wrong, where, since when, how
severe and why, what has been done, what the reader should do. Every fixed phrase is in one table,
:data:`PHRASES` (language → key → template); Simplified and Traditional Chinese are written out
separately (磁盘/磁碟, 确认/確認, 处理/處理), never converted character by character.

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
from collector.store.incidents import Event, FaultRecord, IncidentRecord

MAX_SUBJECT = 120
MAX_DONE = 8  # timeline entries shown; older ones are counted
SYSTEM_ACTORS = frozenset({"schoolops", "system"})
LANGUAGES = (Language.EN, Language.ZH_CN, Language.ZH_TW)

_ROWS: dict[str, tuple[str, str, str]] = {  # key: (en, zh-CN, zh-TW)
    "severity": ("{label} {name}", "{label} {name}", "{label} {name}"),
    "severity.P1": ("critical", "特别重大", "特別重大"),
    "severity.P2": ("major", "重大", "重大"),
    "severity.P3": ("significant", "较大", "較大"),
    "severity.P4": ("general", "一般", "一般"),
    "severity.INFO": ("information", "信息", "資訊"),
    "type.hardware": ("hardware", "硬件", "硬體"),
    "type.network": ("network", "网络", "網路"),
    "type.system": ("system", "系统", "系統"),
    "type.application": ("application", "应用", "應用"),
    "type.security": ("security", "安全", "安全"),
    "type.environment": ("environment and power", "环境与电源", "環境與電源"),
    "type.capacity": ("capacity", "容量", "容量"),
    "rule.filesystem_usage": ("filesystem {key} nearly full ({value:.0f}% used)", "磁盘 {key} 将满（已用 {value:.0f}%）", "磁碟 {key} 將滿（已用 {value:.0f}%）"),
    "rule.filesystem_inodes": ("filesystem {key} running out of room for files ({value:.0f}% of inodes used)", "磁盘 {key} 文件数将满（inode 已用 {value:.0f}%）", "磁碟 {key} 檔案數將滿（inode 已用 {value:.0f}%）"),
    "rule.filesystem_fill_rate": ("filesystem {key} full in about {duration} at this rate", "磁盘 {key} 按当前速度约 {duration} 后写满", "磁碟 {key} 按目前速度約 {duration} 後寫滿"),
    "rule.memory_usage": ("memory nearly exhausted ({value:.0f}% used)", "内存将耗尽（已用 {value:.0f}%）", "記憶體將耗盡（已用 {value:.0f}%）"),
    "rule.swap_usage": ("server slowed by swapping ({value:.0f}% of swap used)", "大量使用交换空间，服务器变慢（已用 {value:.0f}%）", "大量使用置換空間，伺服器變慢（已用 {value:.0f}%）"),
    "rule.load_per_core": ("server overloaded (load {value:.1f} per CPU core)", "服务器负载过高（每核 {value:.1f}）", "伺服器負載過高（每核 {value:.1f}）"),
    "rule.process_down": ("program {key} is not running", "程序 {key} 未运行", "程式 {key} 未執行"),
    "rule.port_closed": ("service on port {key} is not answering", "端口 {key} 的服务无响应", "埠 {key} 的服務無回應"),
    "rule.backup_stale": ("backup {key} is out of date", "备份 {key} 已过期", "備份 {key} 已過期"),
    "rule.asset_silent": ("no contact for {duration}", "已 {duration} 没有消息", "已 {duration} 沒有訊息"),
    "rule.temperature_high": ("{key} too hot ({value:.0f} °C)", "{key} 温度过高（{value:.0f} °C）", "{key} 溫度過高（{value:.0f} °C）"),
    "rule.check_status": ("check {key} is failing", "检查项 {key} 异常", "檢查項 {key} 異常"),
    "rule.agent_probe_errors": ("monitoring cannot read {value:.0f} item(s)", "监控有 {value:.0f} 项无法采集", "監控有 {value:.0f} 項無法採集"),
    "rule.log_pattern_matched": ("suspicious entries in log {key} ({value:.0f} lines)", "日志 {key} 出现可疑记录（{value:.0f} 行）", "日誌 {key} 出現可疑記錄（{value:.0f} 行）"),
    "why.base": ("the check rates it {severity}", "检查规则定为 {severity}", "檢查規則定為 {severity}"),
    "why.reported": ("reported by a person as {severity}", "人工报告为 {severity}", "人工報告為 {severity}"),
    "why.raised": ("{cause}: raised to {severity}", "{cause}，升为 {severity}", "{cause}，升為 {severity}"),
    "why.lowered": ("{cause}: lowered to {severity}", "{cause}，降为 {severity}", "{cause}，降為 {severity}"),
    "why.join": ("; ", "；", "；"),
    "cause.core": ("a core system", "核心系统", "核心系統"),
    "cause.normal": ("an ordinary system", "普通系统", "普通系統"),
    "cause.site": ("{failing} of {total} systems at {where} failing", "{where}共 {total} 台中 {failing} 台故障", "{where}共 {total} 台中 {failing} 台故障"),
    "cause.parent": ("{failing} of {total} systems behind {where} failing", "{where}下共 {total} 台中 {failing} 台故障", "{where}下共 {total} 台中 {failing} 台故障"),
    "cause.this_site": ("the site", "本校区", "本校區"),
    "cause.same_parent": ("the same device", "同一上级设备", "同一上級設備"),
    "cause.exam": ("exam day ({name})", "考试日（{name}）", "考試日（{name}）"),
    "cause.class": ("during class hours", "上课时间", "上課時間"),
    "cause.weekend": ("weekend", "周末", "週末"),
    "cause.break": ("school break", "寒暑假期间", "寒暑假期間"),
    "cause.holiday": ("holiday ({name})", "节假日（{name}）", "節假日（{name}）"),
    "cause.lasting": ("lasting {duration}", "已持续 {duration}", "已持續 {duration}"),
    "unit.d": ("{n} d", "{n} 天", "{n} 天"),
    "unit.h": ("{n} h", "{n} 小时", "{n} 小時"),
    "unit.min": ("{n} min", "{n} 分钟", "{n} 分鐘"),
    "unit.s": ("{n} s", "{n} 秒", "{n} 秒"),
    "actor.system": ("the system", "系统", "系統"),
    "subject.page": ("[{severity}] {place}: {what}", "【{severity}】{place}：{what}", "【{severity}】{place}：{what}"),
    "subject.reminder": ("[Reminder] [{severity}] {place}: {what}", "【提醒】【{severity}】{place}：{what}", "【提醒】【{severity}】{place}：{what}"),
    "subject.progress": ("[{severity}] Progress report {number}: {place}: {what}", "【{severity}】第 {number} 次进展报告：{place}：{what}", "【{severity}】第 {number} 次進展報告：{place}：{what}"),
    "subject.summary": ("[{severity}] Resolved: {place}: {what}", "【{severity}】已解决：{place}：{what}", "【{severity}】已解決：{place}：{what}"),
    "subject.security": ("[{severity}] Security incident, report upward by {deadline}: {place}", "【{severity}】安全事件须于 {deadline} 前上报：{place}", "【{severity}】安全事件須於 {deadline} 前上報：{place}"),
    "subject.digest": ("{count} notifications: {first}", "{count} 条通知：{first}", "{count} 則通知：{first}"),
    "subject.channel_broken": ("Notification channel {channel} is not working", "通知渠道 {channel} 无法使用", "通知管道 {channel} 無法使用"),
    "line.what": ("What: {what}", "问题：{what}", "問題：{what}"),
    "line.where": ("Where: {asset}", "位置：{asset}", "位置：{asset}"),
    "line.where_site": ("Where: {asset}, site {site}", "位置：{site} 的 {asset}", "位置：{site} 的 {asset}"),
    "line.since": ("Since: {time}", "开始时间：{time}", "開始時間：{time}"),
    "line.severity": ("Severity: {severity} ({type} fault)", "级别：{severity}（{type}类故障）", "級別：{severity}（{type}類故障）"),
    "line.why": ("Why this severity: {why}", "定级原因：{why}", "定級原因：{why}"),
    "line.also": ("Also affected: {assets}", "同时受影响：{assets}", "同時受影響：{assets}"),
    "line.incident": ("Incident #{id}", "事件编号 #{id}", "事件編號 #{id}"),
    "line.done": ("Done so far:", "目前已处理：", "目前已處理："),
    "line.nothing_done": ("Done so far: nothing yet.", "目前已处理：暂无。", "目前已處理：暫無。"),
    "line.earlier": ("({n} earlier entries not shown)", "（另有 {n} 条较早记录未列出）", "（另有 {n} 條較早記錄未列出）"),
    "reminder.unacked": ("Reminder: nobody has acknowledged this yet.", "提醒：仍无人确认。", "提醒：仍無人確認。"),
    "reminder.unresolved": ("Reminder: {owner} acknowledged this but it is not resolved yet.", "提醒：{owner} 已确认，但尚未解决。", "提醒：{owner} 已確認，但尚未解決。"),
    "step.backup": ("You receive this as the backup on call: the primary has not acknowledged.", "您作为备班收到此通知：主班尚未确认。", "您作為備班收到此通知：主班尚未確認。"),
    "todo.ack_link": ("Please acknowledge that you are handling it: {url}", "请确认由您处理：{url}", "請確認由您處理：{url}"),
    "todo.ack_cli": ("Please acknowledge that you are handling it: schoolops incidents ack {id}", "请确认由您处理：schoolops incidents ack {id}", "請確認由您處理：schoolops incidents ack {id}"),
    "todo.resolve": ("{owner} is handling it; when fixed, resolve it: schoolops incidents resolve {id}", "{owner} 正在处理；修复后请标记解决：schoolops incidents resolve {id}", "{owner} 正在處理；修復後請標記解決：schoolops incidents resolve {id}"),
    "todo.director": ("For you: nothing to do unless the on-call staff ask; you will get progress reports until it is resolved.", "需要您：无需操作，除非值班人员请示；解决前会定期收到进展报告。", "需要您：無需操作，除非值班人員請示；解決前會定期收到進展報告。"),
    "todo.director_p1": ("For you: decide whether to start the emergency plan; the on-call staff will keep reporting progress.", "需要您：决定是否启动应急预案；值班人员会持续汇报进展。", "需要您：決定是否啟動應急預案；值班人員會持續匯報進展。"),
    "status.open": ("Status: nobody has acknowledged it yet.", "状态：尚无人确认。", "狀態：尚無人確認。"),
    "status.acknowledged": ("Status: {owner} is handling it (acknowledged {time}).", "状态：{owner} 正在处理（{time} 确认）。", "狀態：{owner} 正在處理（{time} 確認）。"),
    "status.resolved": ("Status: resolved {time}.", "状态：已于 {time} 解决。", "狀態：已於 {time} 解決。"),
    "status.faults": ("Faults: {active} still present, {cleared} recovered.", "故障：{active} 项仍存在，{cleared} 项已恢复。", "故障：{active} 項仍存在，{cleared} 項已恢復。"),
    "summary.resolved": ("Resolved {time} by {who}, {duration} after it began.", "已于 {time} 由 {who} 解决，历时 {duration}。", "已於 {time} 由 {who} 解決，歷時 {duration}。"),
    "summary.rca": ("Root cause: {rca}", "原因分析：{rca}", "原因分析：{rca}"),
    "summary.rca_due": ("Next: the rules require a root-cause analysis and preventive measures before it is closed.", "下一步：按规定须完成原因分析并制定预防措施后方可关闭。", "下一步：按規定須完成原因分析並制定預防措施後方可關閉。"),
    "summary.nothing_due": ("Nothing more is needed from you.", "无需您再做任何事。", "無需您再做任何事。"),
    "security.deadline": ("Report it upward by: {deadline}", "上报期限：{deadline}", "上報期限：{deadline}"),
    "security.rule": ("The rules require a security incident of this level to be reported to the authorities above within this time.", "按规定，此级别的安全事件须在期限内向上级报告。", "按規定，此級別的安全事件須在期限內向上級報告。"),
    "security.todo": ("For you: make sure the report is sent, then record it on the incident so these reminders stop.", "需要您：确保按时上报，上报后在事件中登记，提醒即停止。", "需要您：確保按時上報，上報後在事件中登記，提醒即停止。"),
    "broken.what": ("Messages through {channel} fail and will not be retried: {error}", "经 {channel} 发送的消息失败，不再重试：{error}", "經 {channel} 發送的訊息失敗，不再重試：{error}"),
    "broken.fallback": ("Until it is fixed, each person is reached on their next contact.", "修复前，将改用每个人的下一个联系方式。", "修復前，將改用每個人的下一個聯絡方式。"),
    "broken.todo": ("Please check the channel in the on-call file and its secret (schoolops secret set NAME).", "请检查值班文件中该渠道的设置及密钥（schoolops secret set NAME）。", "請檢查值班檔案中該管道的設定及金鑰（schoolops secret set NAME）。"),
    "digest.count": ("{count} notifications, sent as one because the channel takes only a few messages a minute:", "共 {count} 条通知，因渠道每分钟条数有限合并发送：", "共 {count} 則通知，因管道每分鐘則數有限合併發送："),
    "digest.ack": ("Acknowledge: {url}", "确认：{url}", "確認：{url}"),
    "event.acknowledge": ("{time} {actor} acknowledged", "{time} {actor} 已确认", "{time} {actor} 已確認"),
    "event.note": ("{time} {actor} noted: {text}", "{time} {actor} 备注：{text}", "{time} {actor} 備註：{text}"),
    "event.resolve": ("{time} {actor} marked it resolved", "{time} {actor} 标记为已解决", "{time} {actor} 標記為已解決"),
    "event.resolve_auto": ("{time} every fault recovered; resolved automatically", "{time} 所有故障已恢复，自动解决", "{time} 所有故障已恢復，自動解決"),
    "event.reopen": ("{time} {actor} reopened it", "{time} {actor} 重新打开", "{time} {actor} 重新開啟"),
    "event.review": ("{time} {actor} reviewed it", "{time} {actor} 已复核", "{time} {actor} 已複核"),
    "event.close": ("{time} {actor} closed it", "{time} {actor} 已关闭", "{time} {actor} 已關閉"),
    "event.rca": ("{time} {actor} wrote the root-cause analysis", "{time} {actor} 提交了原因分析", "{time} {actor} 提交了原因分析"),
    "event.measure": ("{time} {actor} set a preventive measure", "{time} {actor} 制定了预防措施", "{time} {actor} 制定了預防措施"),
    "event.measure_done": ("{time} {actor} completed a preventive measure", "{time} {actor} 完成了一项预防措施", "{time} {actor} 完成了一項預防措施"),
    "event.severity_changed": ("{time} severity changed to {severity}", "{time} 级别调整为 {severity}", "{time} 級別調整為 {severity}"),
    "event.fault_cleared": ("{time} recovered: {what}", "{time} 已恢复：{what}", "{time} 已恢復：{what}"),
    "event.runbook": ("{time} runbook: {text}", "{time} 处置流程：{text}", "{time} 處置流程：{text}"),
}
PHRASES: dict[Language, dict[str, str]] = {
    language: {key: row[i] for key, row in _ROWS.items()} for i, language in enumerate(LANGUAGES)
}
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
