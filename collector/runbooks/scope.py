"""What a run's templates see, built from the records: pure, shared by the collector and dry runs."""

from __future__ import annotations

from collections.abc import Mapping

from collector.inventory import InventoryEntry
from collector.runbooks.render import Scope
from collector.store.incidents import FaultRecord, IncidentRecord


def build_scope(asset: str, *, known: Mapping[str, str | None], entry: InventoryEntry | None,
                incident: IncidentRecord | None, fault: FaultRecord | None, variables: Mapping[str, str]) -> Scope:
    """``known``: the asset's kind, site, role and tier as the collector knows them (agent or inventory)."""
    fields: dict[str, str] = {"name": asset, **{k: v for k, v in known.items() if v}}
    if entry is not None:
        fields.update(kind=entry.kind, site=entry.site or "", role=entry.role or "", tier=str(entry.tier),
                      address=entry.address or "")
        if entry.ssh is not None:
            fields["ssh_user"] = entry.ssh.username
        fields.update({f"labels.{key}": value for key, value in entry.labels.items()})
    incident_fields: dict[str, str] = {}
    if incident is not None:
        incident_fields = {"id": str(incident.id), "title": incident.title, "severity": incident.severity.label,
                           "state": incident.state.value, "site": incident.site or "", "type": incident.type.value,
                           "asset": incident.asset or ""}
    fault_fields: dict[str, str] = {}
    if fault is not None:
        fault_fields = {"key": fault.key, "rule": fault.rule, "summary": fault.summary, "type": fault.type.value,
                        "severity": fault.severity.label, "fingerprint": fault.fingerprint, "asset": fault.asset,
                        "value": "" if fault.value is None else f"{fault.value:g}"}
    return Scope(incident=incident_fields, fault=fault_fields, asset=fields, variables=dict(variables))


def labels_of(known: Mapping[str, str | None], entry: InventoryEntry | None) -> dict[str, str]:
    """The labels a runbook's ``when.labels`` matches: kind, site, role, tier and the inventory's extras."""
    labels = {k: v for k, v in known.items() if v}
    if entry is not None:
        labels.update(entry.labels)
    return labels
