"""Execute one run: take the asset's lock, carry out the steps in order, record each, finish.

A run is a row in ``runbook_runs``; this advances it. :meth:`Runner.execute` takes the asset's
lock (a row in ``runbook_locks``: one runbook at a time per asset, across restarts) or leaves the
run queued for the next try; renders the steps (:mod:`~collector.runbooks.render`); and carries
them out from ``next_step`` under the runbook's overall timeout, each under its own. An
``approve`` step records a request and parks the run in ``waiting_approval`` with the lock
kept; a decision (:meth:`decide`) queues it again to resume after that step. A ``runbook`` step
runs the called runbook's steps inline as a child run, under the same lock.

Each step is recorded with its command (secrets masked), status, exit status, output (truncated,
secrets redacted) and duration; each run's start and end go on the incident's timeline and in
the audit log. How a run ends decides what happens to the incident (see :meth:`_finish`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.incidents import actions
from collector.incidents.lifecycle import Action
from collector.runbooks.executors import EXECUTORS, Outcome, World
from collector.runbooks.model import ApproveParams, OnFailure, Runbook, RunbookParams
from collector.runbooks.notices import RunbookNotices
from collector.runbooks.render import PlannedStep, RenderError, Scope, plan, redact
from collector.runbooks.safety import ApprovalRequest, approval_refusal
from collector.store import incidents as q
from collector.store import runbooks as r

logger = structlog.get_logger("schoolops.runbooks")
SYSTEM = "schoolops"
STEP_GRACE = 5.0  # a step's transport enforces its timeout; this bounds a transport that does not


class Store(Protocol):
    async def run(self, fn: Callable[[Connection], Any]) -> Any: ...


class RunWorld(World, Protocol):
    async def scope(self, run: r.RunRecord) -> Scope: ...


class _Stop(Exception):
    """The run ends here with ``state`` and ``reason``."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


class Runner:
    def __init__(self, store: Store, runbooks: dict[str, Runbook], world: RunWorld, notices: RunbookNotices, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.runbooks, self.world, self.notices, self.clock = store, runbooks, world, notices, clock

    # --- one run --------------------------------------------------------------------------------
    async def execute(self, run_id: int) -> str:
        """Advance the run as far as it goes now; return its state afterwards. Never leaves a run
        holding its lock because of a bug: an unexpected error ends it as failed, with the error."""
        try:
            return await self._execute(run_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("runbook_run_crashed", run=run_id)
            run = await self.store.run(lambda c: r.get_run(c, run_id))
            if run is not None and run.state not in r.FINAL:
                await self._finish(run, "failed", f"internal error: {type(exc).__name__}: {exc}", escalate=True)
            return "failed"

    async def _execute(self, run_id: int) -> str:
        run: r.RunRecord | None = await self.store.run(lambda c: r.get_run(c, run_id))
        if run is None or run.state != "queued":
            return run.state if run else "missing"
        runbook = self.runbooks.get(run.runbook)
        if runbook is None:
            await self._finish(run, "refused", f"no runbook named {run.runbook!r} is loaded any more")
            return "refused"
        holder = await self.store.run(lambda c: self._take_lock(c, run))
        if holder != run.id:
            return "queued"
        run = await self.store.run(lambda c: r.get_run(c, run_id))
        assert run is not None
        try:
            steps = plan(runbook, await self.world.scope(run), reveal=self.world.secret)
        except (RenderError, KeyError) as exc:
            reason = str(exc) if isinstance(exc, RenderError) else f"the credential store has no secret {exc.args[0]!r}"
            if run.automatic and isinstance(exc, RenderError):
                # the asset lacks what the runbook needs (e.g. a label): not for this asset, not retried
                await self._finish(run, "refused", f"not applicable to {run.asset}: {reason}")
                return "refused"
            await self._finish(run, "failed", reason, escalate=True)
            return "failed"
        try:
            async with asyncio.timeout(float(runbook.timeout)):
                state = await self._steps(run, runbook, steps, run.next_step)
        except _Stop as stop:
            await self._finish(run, stop.state, stop.reason, escalate=stop.state == "escalated")
            return stop.state
        except TimeoutError:
            reason = f"the runbook's overall timeout ({runbook.timeout:g}s) passed; stopped"
            await self._finish(run, "timed_out", reason, escalate=True)
            return "timed_out"
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(run, "interrupted", "the collector stopped during the run"))
            raise
        if state == "waiting_approval":
            return state
        passed_over = await self.store.run(lambda c: sorted({s.name for s in r.steps(c, run.id)
                                                             if s.status in ("failed", "timed_out")}))
        result = f"all {len(steps)} steps done" + (
            f"; {len(passed_over)} failed and {'was' if len(passed_over) == 1 else 'were'} passed over: "
            f"{', '.join(passed_over)}" if passed_over else "")
        await self._finish(run, "succeeded", result)
        return "succeeded"

    def _take_lock(self, conn: Connection, run: r.RunRecord) -> int:
        holder = r.acquire_lock(conn, run.asset, run.id, self.clock())
        if holder == run.id:
            r.update_run(conn, run.id, state="running", started_at=run.started_at or self.clock(), result=None)
            if run.next_step == 0:
                self._event(conn, run, "runbook_started", f"{run.runbook} run {run.id} started by {run.started_by}"
                            + (" (automatic)" if run.automatic else ""))
                q.audit(conn, self.clock(), run.started_by, "runbook.start", f"run:{run.id}",
                        {"runbook": run.runbook, "asset": run.asset, "incident": run.incident_id})
        else:
            waiting = f"waiting for the lock on {run.asset}: run {holder} holds it"
            if run.result != waiting:
                r.update_run(conn, run.id, result=waiting)
        return holder

    async def _steps(self, run: r.RunRecord, runbook: Runbook, steps: list[PlannedStep], start: int) -> str:
        for step in steps[start:]:
            if isinstance(step.params, ApproveParams):
                await self.store.run(lambda c, s=step: self._ask(c, run, s))
                return "waiting_approval"
            if isinstance(step.params, RunbookParams):
                outcome = await self._call(run, step)
            else:
                outcome = await self._perform(run, step)
                if outcome.ok and step.verify is not None:
                    outcome = await self._perform(run, step.verify, verifying=True)
                    if not outcome.ok:
                        outcome = Outcome(False, outcome.output, outcome.exit_status,
                                          f"its check {step.verify.name} {outcome.status.replace('_', ' ')}: "
                                          f"{outcome.detail or 'no detail'}", outcome.timed_out)
            if not outcome.ok:
                reason = f"step {step.name} {outcome.status.replace('_', ' ')}: {outcome.detail or 'no detail'}"
                if step.on_failure == OnFailure.CONTINUE:
                    continue
                raise _Stop("escalated" if step.on_failure == OnFailure.ESCALATE else "aborted", reason)
            await self.store.run(lambda c, n=step.position + 1: r.update_run(c, run.id, next_step=n))
        return "done"

    async def _perform(self, run: r.RunRecord, step: PlannedStep, *, verifying: bool = False) -> Outcome:
        started = self.clock()
        clock = time.monotonic()
        try:
            async with asyncio.timeout(step.timeout + STEP_GRACE):
                outcome = await EXECUTORS[step.action](step, run, self.world)
        except TimeoutError:
            outcome = Outcome(False, timed_out=True, detail=f"no result within {step.timeout:g}s; stopped")
        except CollectorError as exc:
            outcome = Outcome(False, detail=str(exc))
        duration = time.monotonic() - clock
        output = redact(outcome.output, step.secrets)
        detail = redact(outcome.detail, step.secrets)
        await self.store.run(lambda c: r.add_step(
            c, run_id=run.id, position=step.position, name=step.name, action=step.action, command=step.shown,
            status=outcome.status, exit_status=outcome.exit_status, output=output, detail=detail,
            started_at=started, duration=duration))
        logger.info("runbook_step", run=run.id, step=step.name, status=outcome.status, duration=round(duration, 2))
        return Outcome(outcome.ok, output, outcome.exit_status, detail, outcome.timed_out)

    async def _call(self, run: r.RunRecord, step: PlannedStep) -> Outcome:
        assert isinstance(step.params, RunbookParams)
        called = self.runbooks[step.params.name]
        now = self.clock()
        child_id = await self.store.run(lambda c: r.create_run(
            c, runbook=called.name, asset=run.asset, incident_id=run.incident_id, fault=run.fault,
            started_by=f"run:{run.id}", automatic=run.automatic, variables={}, at=now, parent_run=run.id,
            state="running"))
        child = await self.store.run(lambda c: r.get_run(c, child_id))
        try:
            child_steps = plan(called, await self.world.scope(child), reveal=self.world.secret)
            await self._steps(child, called, child_steps, 0)
        except (RenderError, KeyError) as exc:
            state, reason = "failed", str(exc)
        except _Stop as stop:
            state, reason = stop.state, stop.reason
        else:
            state, reason = "succeeded", f"all {len(called.steps)} steps done"
        await self.store.run(lambda c: r.update_run(c, child_id, state=state, result=reason,
                                                    started_at=now, finished_at=self.clock()))
        ok = state == "succeeded"
        detail = f"run {child_id} of {called.name} {state}: {reason}"
        await self.store.run(lambda c: r.add_step(
            c, run_id=run.id, position=step.position, name=step.name, action="runbook", command=step.shown,
            status="ok" if ok else "failed", exit_status=None, output="", detail=detail, started_at=now,
            duration=self.clock() - now))
        return Outcome(ok, detail=detail)

    # --- approvals ------------------------------------------------------------------------------
    def _ask(self, conn: Connection, run: r.RunRecord, step: PlannedStep) -> None:
        assert isinstance(step.params, ApproveParams)
        now = self.clock()
        expires = now + float(step.params.expires)
        approval_id = r.request_approval(conn, run_id=run.id, step=step.name, role=step.params.role,
                                         reason=step.params.reason, requested_by=run.started_by, at=now,
                                         expires_at=expires)
        r.add_step(conn, run_id=run.id, position=step.position, name=step.name, action="approve", command=step.shown,
                   status="waiting", exit_status=None, output="", detail=f"approval request {approval_id}",
                   started_at=now, duration=0.0)
        r.update_run(conn, run.id, state="waiting_approval", next_step=step.position + 1,
                     result=f"waiting for {step.params.role} to approve: {step.params.reason}")
        self._event(conn, run, "runbook_approval", f"{run.runbook} run {run.id} asks {step.params.role} to approve: "
                    f"{step.params.reason}")
        q.audit(conn, now, run.started_by, "runbook.approval_requested", f"run:{run.id}",
                {"role": step.params.role, "step": step.name, "expires_at": expires})
        asset, role, reason = run.asset, step.params.role, step.params.reason
        from collector.notify.model import MessageKind
        from collector.runbooks.notices import phrase

        def text(language: Any) -> tuple[str, str]:
            return (phrase("subject.approve", language, runbook=run.runbook, asset=asset),
                    phrase("text.approve", language, requested_by=run.started_by, role=role, reason=reason,
                           run=run.id, expires=time.strftime("%Y-%m-%d %H:%M", time.localtime(expires))))

        self.notices.send(conn, targets=[f"role:{role}"], incident_id=run.incident_id, key=f"approve:{run.id}",
                          kind=MessageKind.PAGE, severity=None, text=text, now=now)

    def decide(self, conn: Connection, run_id: int, person: str, roles: list[str], approve: bool,
               note: str | None) -> tuple[str | None, str]:
        """Approve or deny the run's pending request: ``(decision, "")``, or ``(None, why not)``. A
        refusal is recorded in the audit log too, so the caller must not roll the transaction back."""
        now = self.clock()
        pending = r.approvals(conn, run_id=run_id, pending_only=True)
        if not pending:
            refusal: str | None = f"run {run_id} has no pending approval request"
            expired = [a for a in r.approvals(conn, run_id=run_id) if a.decision]
            if expired:
                refusal = f"run {run_id}: the request was already {expired[-1].decision}"
        else:
            request = pending[-1]
            refusal = approval_refusal(ApprovalRequest(run_id, request.role, request.requested_by, request.expires_at,
                                                       request.decision), person, roles, now)
        if refusal is None and not r.decide_approval(conn, request.id, "approved" if approve else "denied", person,
                                                     now, note):
            refusal = f"run {run_id}: somebody decided a moment ago"
        if refusal is not None:
            q.audit(conn, now, person, "runbook.approval_refused", f"run:{run_id}", {"reason": refusal})
            return None, refusal
        decision = "approved" if approve else "denied"
        run = r.get_run(conn, run_id)
        assert run is not None
        r.settle_step(conn, run_id, request.step, decision, f"{decision} by {person}" + (f": {note}" if note else ""))
        q.audit(conn, now, person, f"runbook.{decision}", f"run:{run_id}", {"step": request.step, "note": note})
        self._event(conn, run, "runbook_approval", f"{run.runbook} run {run_id}: {decision} by {person}"
                    + (f": {note}" if note else ""))
        if approve:
            r.update_run(conn, run_id, state="queued", result=f"approved by {person}")
        else:
            self._end(conn, run, "denied", f"{person} denied the request" + (f": {note}" if note else ""))
        return decision, ""

    def expire(self, conn: Connection) -> list[int]:
        """End every run whose approval request expired; return their ids."""
        now = self.clock()
        ended = []
        for request in r.approvals(conn, pending_only=True):
            if request.expires_at > now or not r.decide_approval(conn, request.id, "expired", SYSTEM, now, None):
                continue
            run = r.get_run(conn, request.run_id)
            r.settle_step(conn, request.run_id, request.step, "expired", "nobody decided in time")
            if run is not None and run.state == "waiting_approval":
                self._end(conn, run, "expired", f"nobody with the {request.role} role approved within the time allowed")
                ended.append(run.id)
        return ended

    # --- the end of a run -----------------------------------------------------------------------
    async def _finish(self, run: r.RunRecord, state: str, reason: str, *, escalate: bool = False) -> None:
        fault_active = self.world.fault_active(run.fault) if run.fault else False
        await self.store.run(lambda c: self._end(c, run, state, reason, escalate=escalate, fault_active=fault_active))

    def _end(self, conn: Connection, run: r.RunRecord, state: str, reason: str, *, escalate: bool = False,
             fault_active: bool = False) -> None:
        """Record the end; then a remediation that cleared the fault resolves the incident, one that
        did not (or failed with ``on_failure: escalate``) escalates it."""
        now = self.clock()
        r.update_run(conn, run.id, state=state, result=reason, finished_at=now)
        r.release_lock(conn, run.asset, run.id)
        self._event(conn, run, "runbook", f"{run.runbook} run {run.id} {state.replace('_', ' ')}: {reason}")
        q.audit(conn, now, run.started_by, f"runbook.{state}", f"run:{run.id}", {"runbook": run.runbook, "reason": reason})
        logger.info("runbook_run_finished", run=run.id, runbook=run.runbook, asset=run.asset, state=state, reason=reason)
        if run.incident_id is None:
            return
        if state == "succeeded" and run.fault is not None:
            if fault_active:
                escalate, reason = True, "every step succeeded but the fault is still present"
            else:
                self._resolve(conn, run, now)
        if escalate:
            self.notices.escalate(conn, incident_id=run.incident_id, key=f"runbook:{run.runbook}", runbook=run.runbook,
                                  asset=run.asset, run_id=run.id, reason=reason, now=now)

    def _resolve(self, conn: Connection, run: r.RunRecord, now: float) -> None:
        assert run.incident_id is not None
        incident = q.get_incident(conn, run.incident_id)
        if incident is None or incident.state.value not in q.LIVE:
            return
        if any(f.active for f in q.incident_faults(conn, incident.id)):
            return  # another fault of the incident is still firing
        try:
            actions.transition(conn, incident.id, Action.RESOLVE, actor=SYSTEM, at=now,
                               note=f"fixed by runbook {run.runbook} (run {run.id}): the fault cleared")
        except actions.ActionRefused as exc:
            self._event(conn, run, "runbook", f"run {run.id} fixed the fault but the incident stays open: {exc}")

    def _event(self, conn: Connection, run: r.RunRecord, kind: str, text: str) -> None:
        if run.incident_id is not None:
            q.add_event(conn, run.incident_id, self.clock(), kind, run.started_by, text, {"run": run.id})
