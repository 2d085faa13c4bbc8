"""The OpenAPI 3.1 document of every endpoint the collector serves; grows with each capability."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

import schoolops
from schoolops.units import schema_hook
from schoolops.wire import Report

_ERROR = {
    "type": "object",
    "required": ["status", "code", "reason"],
    "properties": {
        "status": {"type": "string", "enum": ["rejected", "error"]},
        "code": {"type": "string", "description": "machine-readable reason"},
        "reason": {"type": "string", "description": "what is wrong, for a person"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_PEOPLE_ERRORS = {
    "401": _error("Missing, unknown or revoked API token"),
    "404": _error("No such incident, measure or window"),
    "409": _error("The action is not allowed in the incident's state (the reason says what is missing)"),
    "422": _error("The body does not match the schema"),
}


def _people_paths(schemas: dict[str, Any]) -> dict[str, Any]:
    """Incidents, measures, maintenance and fault reports (API token: the token's user is the actor)."""
    def op(summary: str, body: str | None = None, *, path_id: bool = True, status: str = "200") -> dict[str, Any]:
        spec: dict[str, Any] = {"summary": summary, "security": [{"apiToken": []}],
                                "responses": {status: {"description": "Done", "content": {"application/json": {"schema": {"type": "object"}}}},
                                              **_PEOPLE_ERRORS}}
        if path_id:
            spec["parameters"] = [_ID]
        if body:
            spec["requestBody"] = {"required": body != "NoteBody", "content": {"application/json": {"schema": schemas[body]}}}
        return spec

    filters = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
               for n in ("state", "asset", "site", "severity", "limit")]
    paths: dict[str, Any] = {
        "/api/v1/incidents": {"get": {**op("List incidents (newest first)", path_id=False), "parameters": filters}},
        "/api/v1/incidents/{id}": {"get": op("An incident with its faults, timeline and preventive measures")},
        "/api/v1/incidents/{id}/notes": {"post": op("Add a note to the timeline", "TextBody")},
        "/api/v1/incidents/{id}/rca": {"post": op("Record the root-cause analysis and preventive measures", "RcaBody")},
        "/api/v1/measures/{id}/done": {"post": op("Mark a preventive measure done")},
        "/api/v1/maintenance": {
            "get": op("List maintenance windows", path_id=False),
            "post": op("Add a maintenance window (faults inside are recorded, not notified)", "MaintenanceBody",
                       path_id=False, status="201"),
        },
        "/api/v1/maintenance/{id}/end": {"post": op("End a maintenance window now")},
        "/api/v1/faults": {"post": op("Report a fault seen by a person", "FaultReportBody", path_id=False, status="201")},
    }
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths["/api/v1/inventory"] = {"get": op("The inventory: servers, network devices, services", path_id=False)}
    paths["/api/v1/inventory/{name}"] = {
        "put": {**op("Add or change an asset (the whole inventory is validated first); applied at once",
                     "InventoryEntry", path_id=False), "parameters": name},
        "delete": {**op("Remove an asset (not while others name it as parent)", path_id=False), "parameters": name},
    }
    paths["/api/v1/runbooks"] = {"get": op("The loaded runbooks", path_id=False)}
    paths["/api/v1/runbooks/{name}/runs"] = {"post": {
        **op("Start a runbook on an asset or incident (201, queued), or with dry_run: what would run", "RunBody",
             path_id=False, status="201"), "parameters": name}}
    paths["/api/v1/runbook-runs"] = {"get": {**op("Runbook runs, newest first", path_id=False), "parameters": [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in ("incident", "asset", "state")]}}
    paths["/api/v1/runbook-runs/{id}"] = {"get": op("A run's record: steps, commands (secrets masked), outputs, approvals")}
    paths["/api/v1/runbook-runs/{id}/approve"] = {"post": op("Approve a waiting run (not your own; your role must match)", "DecisionBody")}
    paths["/api/v1/runbook-runs/{id}/deny"] = {"post": op("Deny a waiting run", "DecisionBody")}
    for action in ("acknowledge", "resolve", "review", "close", "reopen"):
        paths[f"/api/v1/incidents/{{id}}/{action}"] = {"post": op(f"{action.capitalize()} the incident", "NoteBody")}
    return paths


@cache
def document() -> dict[str, Any]:
    from collector import api

    from collector.inventory import InventoryEntry

    from collector.api_runbooks import DecisionBody, RunBody

    bodies = [api.NoteBody, api.TextBody, api.RcaBody, api.MaintenanceBody, api.FaultReportBody, InventoryEntry,
              RunBody, DecisionBody]
    (report_schema, *_), components = msgspec.json.schema_components(
        [Report, *bodies], ref_template="#/components/schemas/{name}", schema_hook=schema_hook)
    components["Error"] = _ERROR
    people = _people_paths({t.__name__: {"$ref": f"#/components/schemas/{t.__name__}"} for t in bodies})
    return {
        "openapi": "3.1.0",
        "info": {"title": "schoolops collector", "version": schoolops.__version__},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "agentToken": {"type": "http", "scheme": "bearer", "description": "so_<id>.<secret> from `schoolops token create`"},
                "apiToken": {"type": "http", "scheme": "bearer", "description": "so_<id>.<secret> from `schoolops api-token create USER`"},
            },
        },
        "paths": {
            **people,
            "/api/v1/reports": {
                "post": {
                    "summary": "Ingest one agent report (applied at most once per asset, stream and seq)",
                    "operationId": "ingestReport",
                    "security": [{"agentToken": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": report_schema}}},
                    "responses": {
                        "200": {
                            "description": "Accepted: applied now, or a duplicate of one already applied",
                            "content": {"application/json": {"schema": {
                                "type": "object", "required": ["status", "seq"],
                                "properties": {"status": {"type": "string", "enum": ["applied", "duplicate"]}, "seq": {"type": "integer"}},
                            }}},
                        },
                        "400": _error("The body is not JSON"),
                        "401": _error("Missing, malformed, unknown or revoked token"),
                        "403": _error("The token belongs to another asset"),
                        "413": _error("The body is larger than the configured limit"),
                        "415": _error("The body is not application/json"),
                        "422": _error("The report does not match the schema, or its schema version is not supported"),
                    },
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": {
                "description": "The collector is serving",
                "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "status": {"type": "string"}, "assets": {"type": "integer"}}}}},
            }}}},
            "/metrics": {"get": {"summary": "Prometheus exposition", "operationId": "metrics", "responses": {"200": {
                "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "responses": {"200": {
                "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
    }
