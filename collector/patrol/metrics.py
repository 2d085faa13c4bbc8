"""Patrol metrics for Prometheus: pass rate, abnormal items by section, duration, last patrol time.

Set from a run's results when it is done (and from the last run at start-up), so /metrics never
reads the store. Every checklist's and section's series exist from the start (no "no data").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge

from collector.patrol.model import Checklist
from collector.store.patrol import PatrolResult, PatrolRun


class PatrolMetrics:
    def __init__(self, registry: CollectorRegistry, checklists: Mapping[str, Checklist]) -> None:
        self.pass_ratio = Gauge("schoolops_patrol_pass_ratio",
                                "Normal results / judged results (normal + abnormal) of the last patrol run.",
                                ["checklist"], registry=registry)
        self.abnormal = Gauge("schoolops_patrol_abnormal_items", "Abnormal results of the last patrol run, by section.",
                              ["checklist", "section"], registry=registry)
        self.not_checked = Gauge("schoolops_patrol_not_checked_items", "Results of the last run that could not be checked.",
                                 ["checklist"], registry=registry)
        self.duration = Gauge("schoolops_patrol_duration_seconds", "How long the last patrol run's automated checks took.",
                              ["checklist"], registry=registry)
        self.last = Gauge("schoolops_patrol_last_run_timestamp_seconds", "When the last patrol run finished (unix time).",
                          ["checklist"], registry=registry)
        self.sections = {name: {section.id for section in checklist.sections} for name, checklist in checklists.items()}
        for name, sections in self.sections.items():
            for gauge in (self.pass_ratio, self.not_checked, self.duration, self.last):
                gauge.labels(checklist=name)
            for section in sections:
                self.abnormal.labels(checklist=name, section=section)

    def record(self, run: PatrolRun, results: list[PatrolResult]) -> None:
        name = run.checklist
        normal = sum(1 for r in results if r.status == "normal")
        abnormal = [r for r in results if r.status == "abnormal"]
        judged = normal + len(abnormal)
        self.pass_ratio.labels(checklist=name).set(normal / judged if judged else math.nan)  # nothing judged: no rate
        sections = self.sections.setdefault(name, set())
        sections.update(r.section for r in results)
        for section in sections:  # a section with nothing abnormal this time is 0, not the last run's count
            self.abnormal.labels(checklist=name, section=section).set(sum(1 for r in abnormal if r.section == section))
        self.not_checked.labels(checklist=name).set(sum(1 for r in results if r.status == "not_checked"))
        if run.finished_at is not None:
            self.duration.labels(checklist=name).set(run.finished_at - run.started_at)
            self.last.labels(checklist=name).set(run.finished_at)
