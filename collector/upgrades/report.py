"""The upgrade report: what was planned, approved and done, phase by phase, and how it ended.

Pure: built from the stored request and its steps, in one of the people's languages (the headings
and the summary; what the checks saw is reported as recorded). The director gets it when an
upgrade ends; ``schoolops upgrade show ID`` prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from collector.store.upgrades import UpgradeRecord, UpgradeStep

PHASE_ORDER = ("pre_checks", "backup", "execute", "post_checks", "rollback", "after_rollback")

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "[schoolops] Upgrade {plan}: {state}",
        "title": "Upgrade {plan} (request {id}): {state}",
        "what": "What", "why": "Why", "assets": "Assets", "who": "Requested by", "approver": "Approved by",
        "when": "Ran", "result": "Result", "steps": "Phases and checks", "compare": "Before and after",
        "none": "—", "ok": "ok", "failed": "FAILED", "timed_out": "TIMED OUT",
        "pre_checks": "Pre-checks", "backup": "Backup", "execute": "Execution", "post_checks": "Post-checks",
        "rollback": "Rollback", "after_rollback": "Checks after the rollback", "batch": "batch",
        "summary": "{passed} passed, {failed} failed",
        "vendor_notice": "vendor notice", "security_advisory": "security advisory", "school_need": "school's need",
        "fault_fix": "fault fix",
        "checked": "pre-checks passed", "check_failed": "pre-checks failed", "succeeded": "succeeded",
        "stopped": "stopped before any change", "rolled_back": "failed and rolled back",
        "rollback_failed": "failed; the ROLLBACK DID NOT restore health", "incomplete": "incomplete",
        "interrupted": "interrupted", "denied": "denied", "expired": "expired", "running": "running",
        "waiting_approval": "waiting for approval", "approved": "approved, waiting for its window", "queued": "queued",
        "more": "Full record: schoolops upgrade show {id}",
    },
    "zh-CN": {
        "subject": "[schoolops] 系统升级 {plan}：{state}",
        "title": "系统升级 {plan}（申请 {id}）：{state}",
        "what": "内容", "why": "原因", "assets": "资产", "who": "申请人", "approver": "批准人",
        "when": "执行时间", "result": "结果", "steps": "各阶段与检查", "compare": "升级前后对比",
        "none": "—", "ok": "正常", "failed": "失败", "timed_out": "超时",
        "pre_checks": "升级前检查", "backup": "备份", "execute": "执行", "post_checks": "升级后检查",
        "rollback": "回滚", "after_rollback": "回滚后检查", "batch": "批次",
        "summary": "通过 {passed} 项，失败 {failed} 项",
        "vendor_notice": "厂商通知", "security_advisory": "安全公告", "school_need": "学校需要", "fault_fix": "故障修复",
        "checked": "升级前检查通过", "check_failed": "升级前检查未通过", "succeeded": "成功",
        "stopped": "已在变更前停止", "rolled_back": "失败，已回滚", "rollback_failed": "失败，回滚未能恢复正常",
        "incomplete": "未全部完成", "interrupted": "被中断", "denied": "被拒绝", "expired": "已过期",
        "running": "进行中", "waiting_approval": "等待批准", "approved": "已批准，等待时间窗口", "queued": "排队中",
        "more": "完整记录：schoolops upgrade show {id}",
    },
    "zh-TW": {
        "subject": "[schoolops] 系統升級 {plan}：{state}",
        "title": "系統升級 {plan}（申請 {id}）：{state}",
        "what": "內容", "why": "原因", "assets": "資產", "who": "申請人", "approver": "核准人",
        "when": "執行時間", "result": "結果", "steps": "各階段與檢查", "compare": "升級前後對比",
        "none": "—", "ok": "正常", "failed": "失敗", "timed_out": "逾時",
        "pre_checks": "升級前檢查", "backup": "備份", "execute": "執行", "post_checks": "升級後檢查",
        "rollback": "回復", "after_rollback": "回復後檢查", "batch": "批次",
        "summary": "通過 {passed} 項，失敗 {failed} 項",
        "vendor_notice": "廠商通知", "security_advisory": "安全公告", "school_need": "學校需要", "fault_fix": "故障修復",
        "checked": "升級前檢查通過", "check_failed": "升級前檢查未通過", "succeeded": "成功",
        "stopped": "已在變更前停止", "rolled_back": "失敗，已回復", "rollback_failed": "失敗，回復未能恢復正常",
        "incomplete": "未全部完成", "interrupted": "被中斷", "denied": "被拒絕", "expired": "已逾期",
        "running": "進行中", "waiting_approval": "等待核准", "approved": "已核准，等待時間窗口", "queued": "排隊中",
        "more": "完整紀錄：schoolops upgrade show {id}",
    },
}


def words(language: str) -> Callable[[str], str]:
    table = _WORDS.get(language) or _WORDS["en"]
    return lambda key: table.get(key, _WORDS["en"].get(key, key))


def _time(at: float | None, zone: str) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def subject(record: UpgradeRecord, language: str) -> str:
    w = words(language)
    return w("subject").format(plan=record.plan, state=w(record.state))


def render(record: UpgradeRecord, steps: Sequence[UpgradeStep], language: str, *, description: str = "",
           reason: str = "", reason_source: str = "", timezone: str = "Asia/Shanghai", outputs: bool = False) -> str:
    """The report as text. ``outputs``: include each step's last output lines (the full record)."""
    w = words(language)
    lines = [w("title").format(plan=record.plan, id=record.id, state=w(record.state)), ""]
    if description:
        lines.append(f"{w('what')}: {description}")
    if reason:
        lines.append(f"{w('why')}: {w(reason_source) if reason_source else ''} {reason}".replace(":  ", ": "))
    assets = record.outcome.get("assets") or []
    lines.append(f"{w('assets')}: {', '.join(assets) if assets else w('none')}")
    lines.append(f"{w('who')}: {record.requested_by}")
    if record.decided_by:
        lines.append(f"{w('approver')}: {record.decided_by}" + (f" ({record.decision_note})" if record.decision_note else ""))
    lines.append(f"{w('when')}: {_time(record.started_at, timezone)} – {_time(record.finished_at, timezone)}")
    lines.append(f"{w('result')}: {record.result or w(record.state)}")
    compared = [s for s in steps if s.action == "compare"]
    if compared:
        lines += ["", f"{w('compare')}:"]
        lines += [f"  [{w(s.phase)}] {s.asset}: {s.detail} — {w(s.status)}" for s in compared]
    lines += ["", f"{w('steps')}:"]
    for phase in PHASE_ORDER:
        mine = [s for s in steps if s.phase == phase]
        if not mine:
            continue
        failed = sum(1 for s in mine if s.status != "ok")
        lines.append(f"  {w(phase)}: {w('summary').format(passed=len(mine) - failed, failed=failed)}")
        for s in mine:
            batch = f" {w('batch')} {s.batch}" if s.batch is not None else ""
            shown = f" `{s.command}`" if s.command else ""
            lines.append(f"    - {s.asset}{batch}: {s.name}{shown}: {w(s.status)}" + (f" — {s.detail}" if s.detail else ""))
            if outputs and s.output.strip():
                lines += [f"      | {line}" for line in s.output.strip().splitlines()[-10:]]
    lines += ["", w("more").format(id=record.id)]
    return "\n".join(lines)
