"""The collector's app factory: one place that wires settings, store, fleet, metrics and routes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from collector import keys
from collector.calendar import SchoolCalendar
from collector.classify import ClassifyPolicy
from collector.fleet import Fleet
from collector.incidents.engine import EngineSettings, IncidentEngine
from collector.incidents.metrics import IncidentMetrics
from collector.rules.loader import RuleSet, load_rules
from schoolops import ConfigError
from collector.ingest import Ingest
from collector.inventory import load_inventory
from collector.metrics import build_registry
from collector.settings import CollectorSettings
from collector.store.sql import SqlStore
from collector.web import add_routes, request_context
from collector import api

logger = structlog.get_logger("schoolops.collector")


def create_app(settings: CollectorSettings) -> web.Application:
    app = web.Application(
        middlewares=[request_context], client_max_size=int(settings.ingest.max_body_bytes)
    )
    app[keys.SETTINGS] = settings
    # rules and calendar are validated here, before anything starts: a bad file stops the start
    app[RULES] = load_rules(settings.rules_path)
    app[CALENDAR] = SchoolCalendar.load(settings.calendar_file) if settings.calendar_file else SchoolCalendar.default()
    fleet = app[keys.FLEET] = Fleet()
    registry, metrics = build_registry(fleet, silence_intervals=settings.ingest.silence_intervals)
    app[keys.REGISTRY] = registry
    app[keys.METRICS] = metrics
    app[INCIDENT_METRICS] = IncidentMetrics(registry)
    app.cleanup_ctx.append(store_context)
    app.cleanup_ctx.append(engine_context)
    add_routes(app)
    api.add_routes(app)
    return app


RULES = web.AppKey("rules", RuleSet)
CALENDAR = web.AppKey("calendar", SchoolCalendar)
INCIDENT_METRICS = web.AppKey("incident_metrics", IncidentMetrics)


async def engine_context(app: web.Application) -> AsyncIterator[None]:
    """The incident engine: evaluates each applied report, ticks in the background, reloads rules on SIGHUP."""
    settings = app[keys.SETTINGS]
    config = settings.incidents
    engine = app[keys.ENGINE] = IncidentEngine(
        app[keys.STORE], app[keys.FLEET], app[RULES], app[CALENDAR],
        policy=ClassifyPolicy(teaching_roles=frozenset(config.teaching_roles)),
        settings=EngineSettings(quiet_period=float(config.quiet_period), reopen_window=float(config.reopen_window),
                                regroup_window=float(config.regroup_window), tick_interval=float(config.tick_interval)),
        metrics=app[INCIDENT_METRICS],
    )
    await engine.load()
    app[keys.INGEST].listeners.append(engine.on_report)
    reloaded = app[keys.METRICS].rules_reload_ok
    reloaded.set(1)

    def reload_rules() -> None:
        try:
            rules = load_rules(settings.rules_path)
        except ConfigError as exc:
            reloaded.set(0)
            logger.error("rules_reload_failed", error=str(exc), keeping="the rules loaded before")
            return
        engine.replace_rules(rules)
        reloaded.set(1)
        logger.info("rules_reloaded", rules=len(rules.rules), path=str(settings.rules_path))

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
        loop.add_signal_handler(signal.SIGHUP, reload_rules)
    task = asyncio.create_task(engine.run(), name="incident-engine")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
