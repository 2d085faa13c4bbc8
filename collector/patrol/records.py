"""What a patrol report is built from, read from the store in one transaction, and the report built from it.

Shared by the CLI (``schoolops patrol show``), the collector's report page and the director's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.patrol import report
from collector.patrol.compare import Comparison, compare
from collector.patrol.model import Checklist
from collector.store import logbook
from collector.store import patrol as p

FIRST_LOG_PERIOD = 86400.0  # with no earlier patrol, the log lines of the day before the run


class NoReport(CollectorError):
    """The report cannot be made: no such run, or its checklist is no longer loaded."""


@dataclass(frozen=True)
class Inputs:
    run: p.PatrolRun
    results: list[p.PatrolResult]
    comparison: Comparison
    logs: list[logbook.AssetLog]
    log_period: tuple[float, float]


def report_inputs(conn: Connection, run_id: int) -> Inputs:
    """A stored run, its results, the comparison with the previous run and the assets' lines of note since then."""
    run = p.get_run(conn, run_id)
    if run is None:
        raise NoReport(f"no patrol run {run_id}")
    results = p.results(conn, run_id)
    before = p.previous_run(conn, run)
    previous = [(r.identity, r.status) for r in p.results(conn, before.id)] if before else None
    comparison = compare([(r.identity, r.status) for r in results], previous,
                         lambda identity: p.abnormal_history(conn, run.checklist, identity, run_id),
                         now=run.started_at, previous_run=before.id if before else None)
    period = (before.started_at if before else run.started_at - FIRST_LOG_PERIOD, run.finished_at or run.started_at)
    return Inputs(run, results, comparison, logbook.summary(conn, *period), period)


def build_report(inputs: Inputs, checklists: Mapping[str, Checklist], names: Mapping[str, str],
                 language: str) -> report.PatrolReport:
    run = inputs.run
    checklist = checklists.get(run.checklist)
    if checklist is None:
        raise NoReport(f"run {run.id} is of checklist {run.checklist!r}, which is no longer loaded")
    return report.build(checklist, run, inputs.results, inputs.comparison, language=language, tz=checklist.timezone,
                        names=names, logs=inputs.logs, log_period=inputs.log_period)
