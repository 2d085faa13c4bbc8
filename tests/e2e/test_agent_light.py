"""The agent runs with its light dependencies only: it never imports the collector or its libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("collector", "aiohttp", "sqlalchemy", "alembic", "prometheus_client", "cryptography", "pysnmp", "paramiko", "netmiko")

BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {HEAVY!r}:
            raise ImportError('the agent must not import ' + name)
sys.meta_path.insert(0, Block())
from agent.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_agent_collects_without_any_collector_dependency(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"collector: {{url: 'http://127.0.0.1:9', token: x}}\nstate_dir: {tmp_path / 'state'}\n")
    result = subprocess.run([sys.executable, "-c", BLOCKER, "--config", str(config), "--once"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == 1 and report["cpu"]["cores"] and report["filesystems"]


def test_base_install_carries_only_the_agent_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {dep.split(">")[0].split("=")[0].strip().lower() for dep in project["dependencies"]}
    assert base == {"psutil", "msgspec", "pyyaml"}
    assert "aiohttp>=3.9" in project["optional-dependencies"]["collector"]


def test_an_agent_sending_plain_http_loads_neither_structlog_nor_tls(tmp_path: Path) -> None:
    """Both cost the agent resident memory (docs/benchmarks.md, figure 1); an https collector loads ssl."""
    config = tmp_path / "agent.yaml"
    config.write_text(f"collector: {{url: 'http://127.0.0.1:9', token: x}}\nstate_dir: {tmp_path / 'state'}\n")
    script = (
        "import sys\nfrom agent.main import Agent\n"
        "agent = Agent(__import__('pathlib').Path(sys.argv[1])); agent.collect()\n"
        "print(sorted(m for m in ('structlog', 'ssl', '_ssl', '_hashlib', 'asyncio') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
