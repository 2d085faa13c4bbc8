"""The schoolops collector: ingest, store, rules, incidents, escalation, runbooks, patrol, exposition."""

from schoolops import SchoolopsError


class CollectorError(SchoolopsError):
    """Root of the collector's own errors."""
