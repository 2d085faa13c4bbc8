"""The collector's app factory: one place that wires settings, store, fleet, metrics and routes."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from collector import keys
from collector.fleet import Fleet
from collector.ingest import Ingest
from collector.inventory import load_inventory
from collector.metrics import build_registry
from collector.settings import CollectorSettings
from collector.store.sql import SqlStore
from collector.web import add_routes, request_context

logger = structlog.get_logger("schoolops.collector")


def create_app(settings: CollectorSettings) -> web.Application:
    app = web.Application(
        middlewares=[request_context], client_max_size=int(settings.ingest.max_body_bytes)
    )
    app[keys.SETTINGS] = settings
    fleet = app[keys.FLEET] = Fleet()
    registry, metrics = build_registry(fleet, silence_intervals=settings.ingest.silence_intervals)
    app[keys.REGISTRY] = registry
    app[keys.METRICS] = metrics
    app.cleanup_ctx.append(store_context)
    add_routes(app)
    return app


async def store_context(app: web.Application) -> AsyncIterator[None]:
    """Open the store (migrating it), load inventory and the fleet view; close on shutdown."""
    settings = app[keys.SETTINGS]
    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = app[keys.STORE] = SqlStore.open(settings.store_url)
    if settings.inventory_file:
        await store.sync_inventory(load_inventory(settings.inventory_file), time.time())
    fleet = app[keys.FLEET]
    fleet.load(await store.list_assets(), await store.latest_reports())
    app[keys.INGEST] = Ingest(
        store, fleet, app[keys.METRICS], max_body_bytes=int(settings.ingest.max_body_bytes),
        token_cache_seconds=float(settings.ingest.token_cache),
    )
    logger.info("store_opened", assets=len(fleet.assets))
    yield
    await store.close()


def ssl_context(settings: CollectorSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    return context


def serve(settings: CollectorSettings) -> None:
    """Run until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout`` to finish."""
    app = create_app(settings)
    scheme = settings.scheme
    host, port = settings.listen.host, settings.listen.port
    shown = f"[{host}]" if ":" in host else host
    logger.info("collector_listening", url=f"{scheme}://{shown}:{port}", metrics=f"{scheme}://{shown}:{port}/metrics",
                data_dir=str(settings.data_path))
    web.run_app(
        app, host=host, port=port, ssl_context=ssl_context(settings),
        shutdown_timeout=float(settings.shutdown_timeout), print=None, access_log=None, handle_signals=True,
    )
    logger.info("collector_stopped")
