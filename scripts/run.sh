#!/usr/bin/env bash
# Install schoolops into .venv and run a collector plus an agent reporting this machine
# (SQLite under ./schoolops-data, no other service). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_python
ensure_venv collector
exec .venv/bin/schoolops up --data-dir "${SCHOOLOPS_DATA_DIR:-$PWD/schoolops-data}" "$@"
