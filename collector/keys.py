"""Typed keys for the objects the app shares (aiohttp AppKey), all in one place."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.fleet import Fleet
from collector.incidents.engine import IncidentEngine
from collector.ingest import Ingest
from collector.metrics import CollectorMetrics
from collector.settings import CollectorSettings
from collector.store.sql import SqlStore

SETTINGS = web.AppKey("settings", CollectorSettings)
STORE = web.AppKey("store", SqlStore)
FLEET = web.AppKey("fleet", Fleet)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", CollectorMetrics)
INGEST = web.AppKey("ingest", Ingest)
ENGINE = web.AppKey("engine", IncidentEngine)
ONCALL = web.AppKey("oncall", object)  # the on-call file (people, roles, channels), or None
