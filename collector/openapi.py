"""The OpenAPI 3.1 document of every endpoint the collector serves; grows with each capability."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

import schoolops
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


@cache
def document() -> dict[str, Any]:
    (report_schema,), components = msgspec.json.schema_components([Report], ref_template="#/components/schemas/{name}")
    components["Error"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {"title": "schoolops collector", "version": schoolops.__version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"agentToken": {"type": "http", "scheme": "bearer", "description": "so_<id>.<secret> from `schoolops token create`"}},
        },
        "paths": {
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
