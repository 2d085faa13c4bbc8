"""Grafana dashboards as code: one module per dashboard, built into ``dashboards/json/`` by ``build``.

The JSON files are what Grafana provisions (``deploy/grafana/``); edit the modules and rebuild
(``python -m dashboards.build``) rather than editing the JSON, and commit both.
"""
