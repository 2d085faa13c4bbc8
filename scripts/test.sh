#!/usr/bin/env bash
# Install what the tests need (Debian packages for the real peers, the project with its test
# extras) and run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_python
# the real peers the tests start themselves (no daemon is started by installing them)
apt_install snmpd snmp snmptrapd openssh-server openssh-client prometheus prometheus-alertmanager \
  chromium chromium-driver fonts-wqy-microhei
ensure_venv collector,test,dashboards
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$code"
