"""Incident metrics read back from the store: opened, acknowledged, resolved, notifications, the director paged."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from collector.incidents.metrics import IncidentMetrics
from collector.store import incidents as q
from collector.store import outbox
from collector.store.sql import SqlStore, sqlite_url

T0 = 1_700_000_000.0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    assert found is not None, f"{name}{labels} does not exist"
    return found


def major_incidents(registry: CollectorRegistry) -> list[dict[str, str]]:
    return [sample.labels for family in registry.collect() for sample in family.samples
            if sample.name == "schoolops_major_incident_opened_timestamp_seconds"]


def open_incident(store: SqlStore, at: float, severity: int = 1, kind: str = "network") -> int:
    def write(conn: object) -> int:
        incident_id = q.insert_incident(conn, {  # type: ignore[arg-type]
            "fingerprint": f"f-{at}", "asset": "core-sw-1", "site": "main", "rule": "device_unreachable",
            "type": kind, "severity": severity, "title": "t", "reason": "r", "state": "open", "opened_at": at})
        assert incident_id is not None
        return incident_id

    return store.run_sync(write)  # type: ignore[arg-type]


async def test_counters_start_at_the_collectors_start_and_count_what_the_store_gained(tmp_path: Path) -> None:
    store = SqlStore.open(sqlite_url(tmp_path / "db.sqlite"))
    registry = CollectorRegistry()
    metrics = IncidentMetrics(registry)
    old = open_incident(store, T0 - 100)  # before the start: the store's history, not counted
    store.run_sync(lambda c: outbox.enqueue(c, incident_id=old, step_key="step:0", person="li", channel="email",
                                            address="li@x", kind="page", severity=1, language="en", subject="s",
                                            text="t", ack_url=None, created_at=T0 - 100, state="sent", attempts=1))
    await metrics.refresh(store, T0)
    assert value(registry, "schoolops_incidents_opened_total", severity="P1", type="network") == 0
    assert value(registry, "schoolops_notifications_total", channel="email", outcome="sent") == 0
    assert value(registry, "schoolops_escalations_to_director_total", severity="P2", kind="page") == 0

    new = open_incident(store, T0 + 1)
    store.run_sync(lambda c: q.update_incident(c, new, 1, state="acknowledged", acknowledged_at=T0 + 61))
    store.run_sync(lambda c: q.add_event(c, new, T0 + 1, "escalation", "schoolops", "step 1",
                                         {"step": "step:0", "kind": "page", "director": True}))
    store.run_sync(lambda c: q.add_event(c, new, T0 + 1, "escalation", "schoolops", "reminder",
                                         {"step": "unacked:1", "kind": "reminder", "director": False}))
    sent = store.run_sync(lambda c: outbox.enqueue(
        c, incident_id=new, step_key="step:0", person="liu", channel="email", address="liu@x", kind="page", severity=1,
        language="zh-CN", subject="s", text="t", ack_url=None, created_at=T0 + 1))
    store.run_sync(lambda c: outbox.update(c, sent, state="sent", attempts=3, sent_at=T0 + 20))  # two retries first
    lost = store.run_sync(lambda c: outbox.enqueue(
        c, incident_id=new, step_key="step:0", person="li", channel="wecom", kind="page", severity=1, language="en",
        subject="s", text="t", ack_url=None, created_at=T0 + 1))
    store.run_sync(lambda c: outbox.update(c, lost, state="given_up", attempts=1))
    await metrics.refresh(store, T0 + 70)

    assert value(registry, "schoolops_incidents_opened_total", severity="P1", type="network") == 1
    assert value(registry, "schoolops_incident_time_to_acknowledge_seconds_count") == 1
    assert value(registry, "schoolops_incident_time_to_acknowledge_seconds_sum") == 60
    assert value(registry, "schoolops_incidents_open", severity="P1", type="network") == 2
    assert value(registry, "schoolops_escalations_to_director_total", severity="P1", kind="page") == 1
    assert value(registry, "schoolops_escalations_to_director_total", severity="P1", kind="reminder") == 0
    assert value(registry, "schoolops_notifications_total", channel="email", outcome="sent") == 1
    assert value(registry, "schoolops_notification_failures_total", channel="email") == 2
    assert value(registry, "schoolops_notifications_total", channel="wecom", outcome="given_up") == 1
    assert value(registry, "schoolops_notification_failures_total", channel="wecom") == 1
    assert value(registry, "schoolops_notifications_total", channel="wecom", outcome="merged") == 0

    listed = {labels["incident"]: labels["state"] for labels in major_incidents(registry)}
    assert listed == {str(old): "open", str(new): "acknowledged"}

    store.run_sync(lambda c: q.update_incident(c, old, 1, state="resolved", resolved_at=T0 + 75))
    await metrics.refresh(store, T0 + 80)  # nothing new but the resolution: nothing counted twice
    assert [labels["incident"] for labels in major_incidents(registry)] == [str(new)]
    assert value(registry, "schoolops_incident_time_to_resolve_seconds_count") == 1
    assert value(registry, "schoolops_notifications_total", channel="email", outcome="sent") == 1
    assert value(registry, "schoolops_escalations_to_director_total", severity="P1", kind="page") == 1
    assert value(registry, "schoolops_incidents_opened_total", severity="P1", type="network") == 1
    await store.close()
