"""Carry out one upgrade request: the phases, in order, on the plan's assets, inside a maintenance window.

``check``: the pre-checks only. ``run``: pre-checks on every asset (and the values the post-checks
compare against), the backup of every asset (verified), then ``serial`` assets at a time: execute,
post-checks; a failed batch rolls back at once and gets the pre-checks again (the health it had
before); after ``max_failed_batches``
failed batches the remaining ones are not started. ``rollback`` (by hand): the rollback steps and
the pre-checks on the assets an earlier upgrade left upgraded.

A maintenance window scoped to exactly those assets is open from the start to the end, so their
faults are recorded but do not page; when it closes, a fault still there pages as usual. The end
state and a summary are recorded, then ``on_done`` (the report to the director) is called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.fleet import Fleet
from collector.inventory import InventoryEntry
from collector.runbooks.notices import RunbookNotices
from collector.store import incidents as q
from collector.store import upgrades as u
from collector.upgrades import core
from collector.upgrades.loader import VERIFY_STEPS, load_plan_text
from collector.upgrades.model import Checks, Plan, Tolerance
from collector.upgrades.steps import PatrolChecks, PhaseWork, UpgradeWorld
from schoolops import ConfigError

logger = structlog.get_logger("schoolops.upgrades")
ROLLBACK_ALLOWANCE = 1800.0  # the window stays open this long past its duration, for a rollback under way

Values = dict[str, float | None]  # "asset|metric|key" → value


def _value_key(asset: str, tolerance: Tolerance) -> str:
    return f"{tolerance.asset or asset}|{tolerance.metric}|{tolerance.key}"


class _Stop(Exception):
    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


class UpgradeRunner:
    def __init__(self, store: Any, world: UpgradeWorld, fleet: Fleet, patrol: PatrolChecks, notices: RunbookNotices, *,
                 entries: Callable[[], dict[str, InventoryEntry]],
                 back_up: Callable[[InventoryEntry, float], Awaitable[Any]] | None = None,
                 on_done: Callable[[int], Awaitable[None]] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.world, self.fleet, self.patrol, self.notices = store, world, fleet, patrol, notices
        self.entries, self.back_up, self.on_done, self.clock = entries, back_up, on_done, clock

    # --- one request ----------------------------------------------------------------------------
    async def execute(self, upgrade_id: int) -> str:
        record = await self.store.run(lambda c: u.get(c, upgrade_id))
        if record is None or record.state not in u.STARTABLE:
            return record.state if record else "missing"
        now = self.clock()
        if not await self.store.run(lambda c: u.move(c, upgrade_id, record.state, "running", started_at=now)):
            return "taken"
        record = await self.store.run(lambda c: u.get(c, upgrade_id))
        outcome: dict[str, Any] = dict(record.outcome)
        window: int | None = None
        try:
            try:
                plan = load_plan_text(record.plan_text, record.source)
            except ConfigError as exc:
                raise _Stop("stopped", f"the plan as requested is no longer valid: {exc}") from None
            assets = self._assets(record)
            outcome["assets"] = assets
            if record.mode != "check":
                window = await self.store.run(lambda c: self._open_window(c, record, plan, assets))
                outcome["window"] = window
            work = PhaseWork(self.store, self.world, self.fleet, self.notices, record, clock=self.clock)
            if record.mode == "rollback":
                state, reason = await self._rollback_by_hand(work, plan, assets, outcome)
            else:
                state, reason = await self._phases(work, plan, record, assets, outcome)
        except _Stop as stop:
            state, reason = stop.state, stop.reason
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(record, window, "interrupted", "the collector stopped during the upgrade: "
                                              "check the assets, then roll back or run it again", outcome))
            raise
        except Exception as exc:
            logger.exception("upgrade_crashed", upgrade=upgrade_id)
            state, reason = "interrupted", f"internal error: {type(exc).__name__}: {exc}"
        await self._finish(record, window, state, reason, outcome)
        if self.on_done is not None:
            try:
                await self.on_done(upgrade_id)
            except Exception:
                logger.exception("upgrade_report_failed", upgrade=upgrade_id)
        return state

    def _assets(self, record: u.UpgradeRecord) -> list[str]:
        """The assets named when it was requested (what the approver was shown), not the selector again."""
        assets: list[str] = list(record.outcome.get("upgraded" if record.mode == "rollback" else "assets") or [])
        if not assets and record.mode == "rollback":
            raise _Stop("stopped", f"upgrade {record.of_upgrade} left no asset upgraded: nothing to roll back")
        if not assets:
            raise _Stop("stopped" if record.mode == "run" else "check_failed",
                        "the request names no asset: nothing was changed")
        return assets

    def _open_window(self, conn: Connection, record: u.UpgradeRecord, plan: Plan, assets: list[str]) -> int:
        now = self.clock()
        ends = now + float(plan.window.duration) + ROLLBACK_ALLOWANCE
        reason = f"upgrade {record.id}: {plan.name} ({plan.description})"
        window = q.add_window(conn, scope={"assets": assets}, starts_at=now, ends_at=ends, owner=record.requested_by,
                              reason=reason, recurrence=None, at=now, actor="schoolops")
        q.audit(conn, now, record.requested_by, "maintenance.add", f"maintenance:{window}",
                {"scope": {"assets": assets}, "ends_at": ends, "upgrade": record.id})
        u.update(conn, record.id, window_id=window)
        return window

    async def _finish(self, record: u.UpgradeRecord, window: int | None, state: str, reason: str,
                      outcome: dict[str, Any]) -> None:
        now = self.clock()

        def write(conn: Connection) -> None:
            if window is not None and q.end_window(conn, window, now):
                q.audit(conn, now, "schoolops", "maintenance.end", f"maintenance:{window}", {"upgrade": record.id})
            u.move(conn, record.id, "running", state, finished_at=now, result=reason)
            u.update(conn, record.id, outcome=outcome)
            q.audit(conn, now, record.requested_by, f"upgrade.{state}", f"upgrade:{record.id}",
                    {"plan": record.plan, "mode": record.mode, "reason": reason})

        await self.store.run(write)
        logger.info("upgrade_finished", upgrade=record.id, plan=record.plan, mode=record.mode, state=state, reason=reason)

    # --- the phases -----------------------------------------------------------------------------
    async def _phases(self, work: PhaseWork, plan: Plan, record: u.UpgradeRecord, assets: list[str],
                      outcome: dict[str, Any]) -> tuple[str, str]:
        before: Values = {}
        failures = await self._checks(work, plan.pre_checks, plan, assets, "pre_checks", None, before=before)
        outcome["before"] = before
        if record.mode == "check":
            if failures:
                return "check_failed", f"{len(failures)} pre-check(s) failed: {failures[0]}"
            return "checked", f"every pre-check passed on {len(assets)} asset(s)"
        if failures:
            return "stopped", f"pre-checks failed, nothing was changed: {failures[0]}"
        failures = await self._backup(work, plan, assets)
        if failures:
            return "stopped", f"the backup failed, nothing was changed: {failures[0]}"
        deadline = (record.started_at or self.clock()) + float(plan.window.duration)
        upgraded: list[str] = []
        rolled_back: list[str] = []
        not_started: list[str] = []
        failed_batches, rollback_ok, healthy = 0, True, True
        first_failure = ""
        window_over = False
        outcome["batches"] = batches_out = []
        for number, batch in enumerate(core.batches(assets, plan.serial), 1):
            stopped = core.Progress(failed_batches, plan.max_failed_batches).stop
            if stopped or self.clock() >= deadline:
                window_over = window_over or not stopped
                not_started += batch
                batches_out.append({"batch": number, "assets": batch, "result": "not_started"})
                continue
            results = await asyncio.gather(*(work.steps(plan.execute, a, "execute", number) for a in batch))
            changed_at = self.clock()
            failed = [res.failure for res in results if not res.ok]
            done = [a for a, res in zip(batch, results, strict=True) if res.ok]
            if done:
                failed += await self._checks(work, plan.post_checks, plan, done, "post_checks", number, before=before,
                                             since=changed_at)
            if not failed:
                upgraded += batch
                batches_out.append({"batch": number, "assets": batch, "result": "upgraded"})
                continue
            failed_batches += 1
            first_failure = first_failure or failed[0]
            ok, ok_after = await self._roll_back(work, plan, batch, number, before)
            rollback_ok, healthy = rollback_ok and ok, healthy and ok_after
            rolled_back += batch
            batches_out.append({"batch": number, "assets": batch, "result": "rolled_back" if ok and ok_after
                                else "rollback_failed", "failure": failed[0]})
        outcome.update(upgraded=upgraded, rolled_back=rolled_back, not_started=not_started, window_over=window_over,
                       rollback_healthy=healthy if rolled_back else None)
        state = core.outcome(failed_assets=len(rolled_back), rolled_back_ok=rollback_ok, healthy_after=healthy)
        counts = (f"{len(upgraded)} of {len(assets)} upgraded" + (f", {len(rolled_back)} rolled back" if rolled_back else "")
                  + (f", {len(not_started)} not started" if not_started else ""))
        if state == "succeeded" and not_started:
            state = "incomplete"
            return state, f"{counts}: the window ended before every batch could start"
        if state == "succeeded":
            return state, f"{counts}; every post-check passed"
        if state == "rolled_back":
            return state, f"{counts}: {first_failure}; the rollback restored them and their checks pass again"
        return state, f"{counts}: {first_failure}; the rollback did not leave them healthy: see the steps"

    async def _roll_back(self, work: PhaseWork, plan: Plan, assets: list[str], batch: int | None,
                         before: Values) -> tuple[bool, bool]:
        results = await asyncio.gather(*(work.steps(plan.rollback, a, "rollback", batch) for a in assets))
        since = self.clock()  # healthy again: the pre-checks (the state before), and the values before
        failures = await self._checks(work, plan.pre_checks, plan, assets, "after_rollback", batch, before=before,
                                      since=since)
        return all(res.ok for res in results), not failures

    async def _rollback_by_hand(self, work: PhaseWork, plan: Plan, assets: list[str],
                                outcome: dict[str, Any]) -> tuple[str, str]:
        before = dict(outcome.get("before", {}))
        ok, healthy = await self._roll_back(work, plan, assets, None, before)
        outcome.update(rolled_back=assets, upgraded=[], rollback_healthy=healthy)
        if ok and healthy:
            return "rolled_back", f"{len(assets)} asset(s) rolled back by hand; their checks pass"
        return "rollback_failed", f"the rollback of {len(assets)} asset(s) did not leave them healthy: see the steps"

    # --- checks ---------------------------------------------------------------------------------
    async def _checks(self, work: PhaseWork, checks: Checks, plan: Plan, assets: list[str], phase: str,
                      batch: int | None, *, before: Values, since: float | None = None) -> list[str]:
        """Run ``checks`` on every asset; return the failures (empty: all passed). Before the change
        (``since`` None) the values to compare are taken into ``before``; after it, compared."""
        compare = plan.post_checks.compare
        found = await asyncio.gather(*(self._asset_checks(work, checks, compare, a, phase, batch, before, since)
                                       for a in assets))
        return [failure for failures in found for failure in failures]

    async def _asset_checks(self, work: PhaseWork, checks: Checks, compare: tuple[Tolerance, ...], asset: str,
                            phase: str, batch: int | None, before: Values, since: float | None) -> list[str]:
        failures: list[str] = []

        async def check(name: str, action: str, ok: bool, detail: str) -> None:
            await work.note(phase, batch, asset, name, action, ok, detail)
            if not ok:
                failures.append(f"{asset}: {name}: {detail}")

        if since is not None:
            sources = {asset} | {t.asset for t in compare if t.asset}
            for source in sorted(sources):
                if work.reports(source) and not await work.fresh_report(source, since, float(checks.wait)):
                    await check(f"report from {source}", "report", False,
                                f"no report from {source} within {checks.wait:g}s after the change")
        if checks.patrol:
            for label, finding in await self.patrol.check_asset(asset):
                await check(f"patrol {label}" + (f" [{finding.key}]" if finding.key else ""), "patrol",
                            finding.status == "normal", finding.evidence or finding.reason or finding.status)
        for spec in checks.free_disk:
            value, _ = work.value(asset, "filesystem.avail_bytes", spec.path)
            verdict = core.free_disk(spec, value)
            await check(f"free disk {spec.path}", "free_disk", verdict.ok, verdict.detail)
        result = await work.steps(checks.steps, asset, phase, batch)
        if not result.ok:
            failures.append(result.failure)
        for tolerance in compare:
            key = _value_key(asset, tolerance)
            value, _ = work.value(tolerance.asset or asset, tolerance.metric, tolerance.key)
            name = f"compare {key.replace('|', ' ')}".rstrip()
            if since is None:
                before[key] = value
                if value is None:
                    await check(name, "compare", False, f"{tolerance.metric}[{tolerance.key}] of "
                                f"{tolerance.asset or asset}: no value now, so nothing to compare after the upgrade")
            else:
                verdict = core.compare(tolerance, before.get(key), value)
                await check(name, "compare", verdict.ok, verdict.detail)
        return failures

    # --- backup ---------------------------------------------------------------------------------
    async def _backup(self, work: PhaseWork, plan: Plan, assets: list[str]) -> list[str]:
        found = await asyncio.gather(*(self._backup_one(work, plan, a) for a in assets))
        return [f for failures in found for f in failures]

    async def _backup_one(self, work: PhaseWork, plan: Plan, asset: str) -> list[str]:
        entry = self.entries().get(asset)
        device = entry is not None and entry.cli is not None
        if plan.backup.config and device:
            assert entry is not None
            if self.back_up is None:
                return [f"{asset}: no config-backup store here (no inventory)"]
            try:
                change = await self.back_up(entry, self.clock())
            except (CollectorError, OSError, KeyError) as exc:  # the transport's error, said plainly
                await work.note("backup", None, asset, "configuration", "config", False, f"{type(exc).__name__}: {exc}")
                return [f"{asset}: the configuration backup failed: {exc}"]
            detail = ("configuration saved" + (f" as {change.commit_id[:12]} (+{change.added} -{change.removed} lines)"
                                               if change else ", unchanged since the last backup")
                      + f": schoolops backups show {asset}")
            await work.note("backup", None, asset, "configuration", "config", True, detail)
        if not plan.backup.steps.steps:
            if not device:
                await work.note("backup", None, asset, "configuration", "config", False, "not a network device with a "
                                "cli section, and the plan has no backup steps for it")
                return [f"{asset}: nothing backs it up (the plan's backup has no steps and it is not a network device)"]
            return []
        result = await work.steps(plan.backup.steps, asset, "backup", None)
        spec = plan.backup.verify
        if spec is None:
            return [] if result.ok else [result.failure]
        path = (result.argv.get(VERIFY_STEPS[0]) or ("", "the backup file"))[-1]
        if result.failed_step == VERIFY_STEPS[0]:
            why = result.outputs.get(VERIFY_STEPS[0], "").strip().splitlines()
            detail = f"{path} is missing" + (f": {why[-1]}" if why else "")
            await work.note("backup", None, asset, "backup file", "backup_file", False, detail)
            return [f"{asset}: {detail}"]
        if not result.ok:
            return [result.failure]
        verdict = core.backup_file(spec, path, result.outputs[VERIFY_STEPS[0]], result.outputs[VERIFY_STEPS[1]])
        await work.note("backup", None, asset, "backup file", "backup_file", verdict.ok, verdict.detail)
        if not verdict.ok:
            return [f"{asset}: {verdict.detail}"]
        restored = await work.steps(plan.backup.restore_test, asset, "backup", None)
        return [] if restored.ok else [f"{restored.failure} (the restore test of {path})"]
