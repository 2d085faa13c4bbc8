#!/usr/bin/env bash
# Install what the benchmarks need (the anchors and peers from Debian, the bench extra, the agent as
# deploy/install-agent.sh installs it) and run them all; the page goes to docs/benchmarks.md.
# Extra arguments go to `python -m bench` (--runs N, --only 2,3, --profile DIR, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_python
# anchors and peers: node_exporter, wrk, snmpd and snmpbulkwalk (installing them starts no daemon)
apt_install snmpd snmp prometheus-node-exporter wrk
ensure_venv collector,test,bench
# the agent measured as a school server runs it: its own venv with the light dependencies only
[ -x .venv-agent/bin/python ] || "$PYTHON" -m venv .venv-agent
mapfile -t agent_deps < <(.venv/bin/python -c \
  'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
.venv-agent/bin/python -m pip install -q "${agent_deps[@]}"
exec .venv/bin/python -m bench "$@"
