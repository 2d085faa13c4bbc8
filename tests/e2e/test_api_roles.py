"""Each role against each mutating API endpoint, on a running collector: the ones a role may not use
answer 403 "forbidden"; the others get past the check (to 404/409/422 here, since the targets do not
exist or the bodies are incomplete, so nothing is changed by this test)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Collector, cli, people_file

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ROLES = ("viewer", "operator", "on-call", "director", "admin")

# (method, path, body) of every mutating endpoint, by the name used in ALLOWED below
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "acknowledge": ("POST", "/api/v1/incidents/999/acknowledge", {}),
    "resolve": ("POST", "/api/v1/incidents/999/resolve", {}),
    "review": ("POST", "/api/v1/incidents/999/review", {}),
    "close": ("POST", "/api/v1/incidents/999/close", {}),
    "reopen": ("POST", "/api/v1/incidents/999/reopen", {}),
    "note": ("POST", "/api/v1/incidents/999/notes", {"text": "x"}),
    "rca": ("POST", "/api/v1/incidents/999/rca", {"rca": "x"}),
    "security-report": ("POST", "/api/v1/incidents/999/security-report", {"reference": "x"}),
    "measure-done": ("POST", "/api/v1/measures/999/done", {}),
    "maintenance-add": ("POST", "/api/v1/maintenance", {"scope": {}}),
    "maintenance-end": ("POST", "/api/v1/maintenance/999/end", {}),
    "fault-report": ("POST", "/api/v1/faults", {"description": "x"}),
    "inventory-put": ("PUT", "/api/v1/inventory/new-asset", {"name": "new-asset", "kind": "printer"}),
    "inventory-delete": ("DELETE", "/api/v1/inventory/no-such-asset", None),
    "runbook-run": ("POST", "/api/v1/runbooks/no-such-runbook/runs", {"asset": "web-01"}),
    "approve": ("POST", "/api/v1/runbook-runs/999/approve", {}),
    "deny": ("POST", "/api/v1/runbook-runs/999/deny", {}),
}
OPERATOR = {"fault-report", "maintenance-add", "maintenance-end", "measure-done"}
ON_CALL = OPERATOR | {"acknowledge", "resolve", "review", "close", "reopen", "note", "rca", "security-report",
                      "runbook-run", "approve", "deny"}
ALLOWED = {"viewer": set(), "operator": OPERATOR, "on-call": ON_CALL, "director": ON_CALL, "admin": set(ENDPOINTS)}


def call(collector: Collector, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{collector.url}{path}", data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def roles_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, dict[str, str]]]:
    directory: Path = tmp_path_factory.mktemp("roles")
    people = people_file(directory / "oncall.yaml", {f"p.{role}": [role] for role in ROLES})
    collector = Collector(directory / "collector", extra={"oncall_file": str(people)}).start()
    try:
        config = ["--config", str(collector.config_path)]
        tokens = {role: cli("api-token", "create", f"p.{role}", *config).stdout.strip() for role in ROLES}
        tokens["stranger"] = cli("api-token", "create", "not.in.the.file", *config).stdout.strip()
        yield collector, tokens
    finally:
        collector.stop()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_use_exactly_its_mutating_endpoints(roles_site: tuple[Collector, dict[str, str]],
                                                          role: str) -> None:
    collector, tokens = roles_site
    outcome = {}
    for name, (method, path, body) in ENDPOINTS.items():
        status, answer = call(collector, method, path, tokens[role], body)
        outcome[name] = "forbidden" if status == 403 and answer.get("code") == "forbidden" else f"{status}"
    refused = {name for name, result in outcome.items() if result == "forbidden"}
    assert refused == set(ENDPOINTS) - ALLOWED[role], outcome
    # what got through did not change anything: each target was missing or the body incomplete
    passed = {name: result for name, result in outcome.items() if result != "forbidden"}
    assert all(result in ("404", "409", "422") or (name in ("approve", "deny") and result == "403")
               for name, result in passed.items()), outcome  # approving a missing run: approval_refused


def test_everyone_in_the_file_reads_and_a_stranger_reads_nothing(roles_site: tuple[Collector, dict[str, str]]) -> None:
    collector, tokens = roles_site
    for role in ROLES:
        assert call(collector, "GET", "/api/v1/incidents", tokens[role])[0] == 200
    status, answer = call(collector, "GET", "/api/v1/incidents", tokens["stranger"])
    assert status == 403 and answer["code"] == "unknown_person" and "on-call file" in answer["reason"]
    status, answer = call(collector, "POST", "/api/v1/faults", tokens["viewer"], {"description": "x", "site": "a"})
    assert status == 403 and "fault.report" in answer["reason"] and "operator" in answer["reason"]
