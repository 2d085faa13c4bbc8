"""The benchmarks: schoolops measured beside the tools a school would otherwise run, on one machine.

``python -m bench`` (or ``make bench``) runs every figure of the benchmark issue — one module each:
:mod:`bench.footprint`, :mod:`bench.ingest`, :mod:`bench.snmp`, :mod:`bench.detection`,
:mod:`bench.scale` — and writes ``docs/benchmarks.md`` (:mod:`bench.report`). Not part of the test
suite: ``tests/bench`` only checks that ``--quick`` runs.
"""
