"""The collector's app factory: one place that wires settings, store, fleet, metrics and routes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as secrets_module
import signal
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from collector import api, api_runbooks, keys
from collector.calendar import SchoolCalendar
from collector.classify import ClassifyPolicy
from collector.fleet import AssetView, Fleet
from collector.incidents.engine import EngineSettings, IncidentEngine
from collector.incidents.metrics import IncidentMetrics
from collector.ingest import Ingest
from collector.inventory import load_entries, load_inventory, to_assets
from collector.logbook import LogBook
from collector.logbook import from_report as logbook_entries
from collector.metrics import build_registry
from collector.notify import ackweb
from collector.notify.channels import build_channel
from collector.notify.dispatcher import Dispatcher
from collector.notify.escalator import Escalator
from collector.notify.oncall import load_oncall
from collector.patrol import reportweb
from collector.reports import reportweb as monthly_reportweb
from collector import webui
from collector.patrol.loader import load_checklists
from collector.rules.loader import RuleSet, load_rules
from collector.runbooks.loader import check_approvers, load_runbooks
from collector.secrets import SecretBox, get_secret, list_secrets
from collector.settings import CollectorSettings
from collector.store.sql import SqlStore
from collector.web import add_routes, request_context
from schoolops import ConfigError

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
    app[INVENTORY_LISTENERS] = []
    app[ONCALL] = load_oncall(settings.oncall_file) if settings.oncall_file else None
    app[RUNBOOKS] = load_runbooks(settings.runbooks_path)
    patrol_dir = settings.runbooks_path / "patrol"
    app[CHECKLISTS] = load_checklists(patrol_dir, runbooks=set(app[RUNBOOKS])) if patrol_dir.is_dir() else {}
    if app[ONCALL] is not None:
        check_approvers(app[RUNBOOKS], {role.value for p in app[ONCALL].people for role in p.roles}, str(settings.oncall_file))
    app[ESCALATOR] = None
    app.cleanup_ctx.append(store_context)
    app.cleanup_ctx.append(engine_context)
    app.cleanup_ctx.append(notify_context)
    app.cleanup_ctx.append(network_context)
    app.cleanup_ctx.append(runbook_context)
    app.cleanup_ctx.append(patrol_context)
    app.cleanup_ctx.append(upgrade_context)
    app.cleanup_ctx.append(monthly_report_context)
    add_routes(app)
    api.add_routes(app)
    api_runbooks.add_routes(app)
    ackweb.add_routes(app)
    reportweb.add_routes(app)
    monthly_reportweb.add_routes(app)
    webui.add_routes(app)
    return app


ONCALL = keys.ONCALL


async def notify_context(app: web.Application) -> AsyncIterator[None]:
    """Channels with their decrypted secrets, the escalator and the dispatcher, each a background task."""
    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    app[ackweb.LINK_KEY] = read_or_create_key(settings.data_path / "link.key")
    oncall = app[ONCALL]
    if oncall is None:
        logger.warning("notifications_off", reason="no oncall_file in the collector config: incidents are recorded, "
                       "nobody is notified")
        yield
        return
    box = SecretBox(settings.data_path / "secret.key")
    needed = {name for channel in oncall.channels for name in secret_names(channel)}
    values = store.run_sync(lambda c: {n: get_secret(c, box, n) for n in needed if n in {s for s, _, _ in list_secrets(c)}})
    channels = {}
    for config in oncall.channels:
        channels[config.id] = build_channel(config, lambda name, c=config: values[name])
    dispatcher = Dispatcher(store, channels, oncall)
    escalator = Escalator(store, oncall, link_key=app[ackweb.LINK_KEY], public_url=settings.base_url,
                          link_ttl=float(settings.link_ttl), on_enqueued=dispatcher.wake,
                          critical_roles=frozenset(oncall.escalation.critical_infrastructure_roles))
    app[ESCALATOR] = (escalator, dispatcher.wake)
    tasks = [asyncio.create_task(escalator.run(), name="escalator"), asyncio.create_task(dispatcher.run(), name="dispatcher")]
    logger.info("notifications_on", channels=sorted(channels), people=len(oncall.people))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for channel in channels.values():
        close = getattr(channel, "close", None)
        if close is not None:
            await close()


NETWORK = web.AppKey("network", object)
RUNBOOKS = web.AppKey("runbooks", dict)
ESCALATOR = web.AppKey("escalator", object)  # (Escalator, wake the dispatcher) when notifications are on
RUNBOOK_SERVICE = web.AppKey("runbook_service", object)
CHECKLISTS = web.AppKey("checklists", dict)
PATROL_SERVICE = web.AppKey("patrol_service", object)


@contextlib.asynccontextmanager
async def _running(service: Any, name: str) -> AsyncIterator[None]:
    """``service.run()`` as a task while the app serves; at shutdown the task is cancelled, then
    ``service.stop()`` (the patrol, runbook and upgrade services share this life cycle)."""
    task = asyncio.create_task(service.run(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.stop()


async def patrol_context(app: web.Application) -> AsyncIterator[None]:
    """The daily patrol: the schedule, runs through the runbooks' transports, the director's summary."""
    from collector.patrol.metrics import PatrolMetrics
    from collector.patrol.runner import PatrolRunner
    from collector.patrol.service import PatrolService
    from collector.runbooks.safety import automation_problem
    from collector.store import patrol as p

    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    runbooks = app[RUNBOOK_SERVICE]
    checklists = app[CHECKLISTS]
    metrics = PatrolMetrics(app[keys.REGISTRY], checklists)

    def problem(name: str) -> str | None:
        known = runbooks.runbooks  # type: ignore[attr-defined]
        return automation_problem(known[name], known) if name in known else f"no runbook named {name!r}"

    runner = PatrolRunner(store, app[keys.FLEET], app[keys.ENGINE], checklists,
                          entries=lambda: runbooks.entries, secret=runbooks.secret,  # type: ignore[attr-defined]
                          snmp_get=runbooks.snmp_get, automation_problem=problem,  # type: ignore[attr-defined]
                          cli_slots=runbooks.cli_slots)  # type: ignore[attr-defined]

    async def done(run_id: int) -> None:
        run, results = await store.run(lambda c: (p.get_run(c, run_id), p.results(c, run_id)))
        metrics.record(run, results)
        await send_patrol_summary(app, run_id)

    service = PatrolService(store, runner, checklists, on_done=done, tick_interval=float(settings.patrol.tick_interval),
                            recheck_interval=float(settings.patrol.recheck_interval))
    app[PATROL_SERVICE] = service
    last = await store.run(lambda c: [(r, p.results(c, r.id)) for r in
                                      {x.checklist: x for x in reversed(p.list_runs(c, limit=200))
                                       if x.state in ("done", "signed", "reviewed")}.values()])
    for run, results in last:
        metrics.record(run, results)
    await service.start()
    async with _running(service, "patrol"):
        yield


async def upgrade_context(app: web.Application) -> AsyncIterator[None]:
    """Upgrades: approvals asked and lapsing, requests carried out through the runbooks' transports."""
    from collector.patrol.runner import PatrolRunner
    from collector.runbooks.notices import RunbookNotices
    from collector.upgrades.runner import UpgradeRunner
    from collector.upgrades.service import UpgradeService, send_report

    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    runbooks = app[RUNBOOK_SERVICE]
    escalation = app[ESCALATOR]
    notices = RunbookNotices(app[ONCALL], escalation[0] if escalation else None,
                             escalation[1] if escalation else (lambda: None))
    checks = PatrolRunner(store, app[keys.FLEET], app[keys.ENGINE], app[CHECKLISTS],
                          entries=lambda: runbooks.entries, secret=runbooks.secret,  # type: ignore[attr-defined]
                          snmp_get=runbooks.snmp_get, cli_slots=runbooks.cli_slots)  # type: ignore[attr-defined]
    network = app.get(NETWORK)
    timezone = app[ONCALL].timezone if app[ONCALL] is not None else "Asia/Shanghai"

    async def done(upgrade_id: int) -> None:
        await send_report(store, notices, upgrade_id, timezone=timezone)

    runner = UpgradeRunner(store, runbooks, app[keys.FLEET], checks, notices,  # type: ignore[arg-type]
                           entries=lambda: runbooks.entries,  # type: ignore[attr-defined]
                           back_up=(lambda entry, now: network.back_up(entry, now, raising=True))  # type: ignore[attr-defined]
                           if network is not None else None,
                           on_done=done)
    service = UpgradeService(store, runner, notices, timezone=timezone,
                             tick_interval=float(settings.runbooks.tick_interval))
    await service.start()
    async with _running(service, "upgrades"):
        yield


async def monthly_report_context(app: web.Application) -> AsyncIterator[None]:
    """The director's monthly report, sent on the 1st of each month (once: a restart does not send it again)."""
    from collector.reports.monthly import down_rules
    from collector.reports.schedule import MonthlyReportService
    from collector.runbooks.notices import RunbookNotices

    oncall, escalation = app[ONCALL], app[ESCALATOR]
    if oncall is None or escalation is None:  # no on-call file: nobody to send it to
        yield
        return
    service = MonthlyReportService(
        app[keys.STORE], oncall, RunbookNotices(oncall, escalation[0], escalation[1]),
        checklists=app[CHECKLISTS], calendar=app[CALENDAR], down_rules=down_rules(app[RULES]),
        link_key=app[ackweb.LINK_KEY], base_url=app[keys.SETTINGS].base_url)
    task = asyncio.create_task(service.run(), name="monthly-report")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def send_patrol_summary(app: web.Application, run_id: int) -> None:
    """The director gets the report's summary in their language, with how to open the full report."""
    from collector.patrol.records import build_report, report_inputs
    from collector.notify.model import MessageKind
    from collector.notify.oncall import directors
    from collector.patrol import report

    oncall, escalation = app[ONCALL], app[ESCALATOR]
    if oncall is None or escalation is None:
        return
    from collector.runbooks.notices import RunbookNotices

    notices = RunbookNotices(oncall, escalation[0], escalation[1])
    inputs = await app[keys.STORE].run(lambda c: report_inputs(c, run_id))
    names = {person.id: person.name for person in oncall.people}
    texts = {}
    for language in {person.language for person in directors(oncall)}:
        built = build_report(inputs, app[CHECKLISTS], names, language.value)
        subject, body = report.summary_message(built)
        link = reportweb.report_link(app[keys.SETTINGS].base_url, app[ackweb.LINK_KEY], run_id, built.language, time.time())
        texts[language] = (subject, f"{body}\n\n{link}\n(schoolops patrol show {run_id} --format html -o patrol-{run_id}.html)")
    await app[keys.STORE].run(lambda c: notices.send(
        c, targets=["director"], incident_id=None, key=f"patrol:{run_id}", kind=MessageKind.SUMMARY, severity=None,
        text=lambda language: texts.get(language) or next(iter(texts.values())), now=time.time()))


def reload_runbooks(app: web.Application) -> None:
    """Re-read the runbooks folder (SIGHUP); a bad file keeps the runbooks loaded before."""
    settings = app[keys.SETTINGS]
    try:
        runbooks = load_runbooks(settings.runbooks_path)
        if app[ONCALL] is not None:
            check_approvers(runbooks, {role.value for p in app[ONCALL].people for role in p.roles}, str(settings.oncall_file))
    except ConfigError as exc:
        logger.error("runbooks_reload_failed", error=str(exc), keeping="the runbooks loaded before")
        return
    app[RUNBOOK_SERVICE].replace_runbooks(runbooks)  # type: ignore[attr-defined]
    logger.info("runbooks_reloaded", runbooks=len(runbooks), path=str(settings.runbooks_path))


async def runbook_context(app: web.Application) -> AsyncIterator[None]:
    """Runbooks: automatic triggers, the run queue, approvals; steps reach assets over SSH, CLI, SNMP, HTTP."""
    from collector.runbooks.notices import RunbookNotices
    from collector.runbooks.service import RunbookService, RunbookSettings

    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    box = SecretBox(settings.data_path / "secret.key")

    def secret(name: str) -> str:
        return store.run_sync(lambda c: get_secret(c, box, name))

    escalation = app[ESCALATOR]
    notices = RunbookNotices(app[ONCALL], escalation[0] if escalation else None,
                             escalation[1] if escalation else (lambda: None))
    config = settings.runbooks
    service = RunbookService(
        store, app[keys.FLEET], app[keys.ENGINE], app[RUNBOOKS],
        entries=load_entries(settings.inventory_file) if settings.inventory_file else [], secret=secret,
        notices=notices, cli_concurrency=settings.network.cli_concurrency,
        settings=RunbookSettings(attempts=config.attempts, attempt_window=float(config.attempt_window),
                                 retry_after=float(config.retry_after), tick_interval=float(config.tick_interval)),
    )
    app[RUNBOOK_SERVICE] = service
    await service.start()

    async def on_inventory(entries: list) -> None:  # type: ignore[type-arg]
        service.apply_inventory(entries)

    app[INVENTORY_LISTENERS].append(on_inventory)
    logger.info("runbooks_loaded", runbooks=len(app[RUNBOOKS]), path=str(settings.runbooks_path))
    async with _running(service, "runbooks"):
        yield


async def network_context(app: web.Application) -> AsyncIterator[None]:
    """Pollers, probes, the trap receiver and config backups for the inventory's devices and services."""
    settings = app[keys.SETTINGS]
    if not settings.inventory_file:
        yield
        return
    from collector.network.service import NetworkService

    store = app[keys.STORE]
    box = SecretBox(settings.data_path / "secret.key")

    def secret(name: str) -> str:
        return store.run_sync(lambda c: get_secret(c, box, name))

    service = NetworkService(app[keys.FLEET], app[keys.ENGINE], store, secret, data_dir=settings.data_path,
                             config=settings.network, logbook=app[LOGBOOK])
    app[NETWORK] = service
    await service.start(load_entries(settings.inventory_file))
    app[INVENTORY_LISTENERS].append(service.apply_inventory)
    from collector.network.metrics import NetworkCollector

    exporter = NetworkCollector(service)
    app[keys.REGISTRY].register(exporter)  # type: ignore[arg-type]
    yield
    app[keys.REGISTRY].unregister(exporter)  # type: ignore[arg-type]
    await service.stop()


def read_or_create_key(path: Path) -> bytes:
    """A 256-bit key in a file of its own (mode 0600), made on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets_module.token_bytes(32))
    return path.read_bytes()


def secret_names(channel: object) -> list[str]:
    return [getattr(channel, f) for f in ("password_secret", "url_secret", "signing_secret") if getattr(channel, f, None)]


RULES = web.AppKey("rules", RuleSet)
# called with the new inventory entries after a reload (the network pollers re-read their targets)
INVENTORY_LISTENERS = web.AppKey("inventory_listeners", list)
RELOAD_INVENTORY = web.AppKey("reload_inventory", object)
CALENDAR = web.AppKey("calendar", SchoolCalendar)
INCIDENT_METRICS = web.AppKey("incident_metrics", IncidentMetrics)
LOGBOOK = web.AppKey("logbook", LogBook)


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

    async def reload_inventory() -> None:
        if not settings.inventory_file:
            return
        try:
            entries = load_entries(settings.inventory_file)
        except ConfigError as exc:
            logger.error("inventory_reload_failed", error=str(exc), keeping="the inventory loaded before")
            return
        await app[keys.STORE].sync_inventory(to_assets(entries), time.time())
        app[keys.FLEET].apply_inventory(await app[keys.STORE].list_assets())
        for listener in app[INVENTORY_LISTENERS]:
            await listener(entries)
        logger.info("inventory_reloaded", assets=len(entries))

    app[RELOAD_INVENTORY] = reload_inventory

    def reload() -> None:
        reload_rules()
        if RUNBOOK_SERVICE in app:
            reload_runbooks(app)
        asyncio.get_running_loop().create_task(reload_inventory())

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
        loop.add_signal_handler(signal.SIGHUP, reload)
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
    logbook = app[LOGBOOK] = LogBook(store)

    async def log_lines(view: AssetView) -> None:
        if view.report is not None and view.report.logs and view.received_at is not None:
            await logbook.add(logbook_entries(view.report, view.received_at))

    app[keys.INGEST].listeners.append(log_lines)
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
