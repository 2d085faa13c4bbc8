#!/usr/bin/env bash
# Install the schoolops agent on a school server (Debian/Ubuntu, systemd).
#   sudo bash deploy/install-agent.sh [PACKAGE]     PACKAGE: a wheel, a checkout, or "schoolops" (default: this checkout)
# Then put the collector URL in /etc/schoolops/agent.yaml, the token from
# `schoolops token create NAME` (run on the collector) in /etc/schoolops/agent.token, and
#   systemctl enable --now schoolops-agent
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
package="${1:-$here}"
. "$here/scripts/lib.sh"
ensure_python
[ -x /opt/schoolops-agent/bin/python ] || "$PYTHON" -m venv /opt/schoolops-agent
/opt/schoolops-agent/bin/python -m pip install -q --upgrade "$package"   # the agent's light dependencies only
install -d -m 0755 /etc/schoolops
if [ ! -e /etc/schoolops/agent.yaml ]; then
  install -m 0644 "$here/deploy/examples/agent.yaml" /etc/schoolops/agent.yaml
  echo "wrote /etc/schoolops/agent.yaml: set collector.url and the asset's site/role/tier" >&2
fi
install -m 0644 "$here/deploy/systemd/schoolops-agent.service" /etc/systemd/system/schoolops-agent.service
command -v systemctl >/dev/null && systemctl daemon-reload || true
/opt/schoolops-agent/bin/schoolops-agent --config /etc/schoolops/agent.yaml --check || true
