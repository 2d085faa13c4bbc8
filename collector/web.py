"""HTTP plumbing: request ids, JSON errors, /healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

import secrets

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector import keys
from collector.openapi import document

logger = structlog.get_logger("schoolops.web")


@web.middleware
async def request_context(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Bind a request id to every log line of the request; answer every HTTP error as JSON."""
    request_id = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            code = "body_too_large"
        response = web.json_response({"status": "error", "code": code, "reason": reason}, status=exc.status)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers["X-Request-Id"] = request_id
    return response


async def healthz(request: web.Request) -> web.Response:
    fleet = request.app[keys.FLEET]
    return web.json_response({"status": "ok", "assets": len(fleet.assets)})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[keys.REGISTRY])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


async def ingest_report(request: web.Request) -> web.Response:
    return await request.app[keys.INGEST].handle(request)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_post("/api/v1/reports", ingest_report)
