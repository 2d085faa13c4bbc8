"""The shipped example configs and the README's copies of them are valid and identical."""

from __future__ import annotations

import re
from pathlib import Path

from agent.config import AgentConfig
from collector.inventory import load_inventory
from collector.settings import CollectorSettings
from schoolops.conf import load_file, load_text

ROOT = Path(__file__).resolve().parent.parent


def readme_block(after_heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(after_heading):]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, f"no yaml block after {after_heading!r}"
    return match.group(1)


def body(path: Path) -> str:
    """The example without its leading comment block."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def test_agent_example_is_valid_and_matches_readme() -> None:
    path = ROOT / "deploy/examples/agent.yaml"
    config = load_file(path, AgentConfig)
    assert config.interval == 15 and config.spool.max_bytes == 64 * 1024 * 1024
    assert readme_block("### The agent") == body(path)


def test_collector_example_is_valid_and_matches_readme() -> None:
    path = ROOT / "deploy/examples/collector.yaml"
    settings = load_file(path, CollectorSettings)
    assert settings.listen.port == 8750 and settings.tls is not None
    assert readme_block("### The collector") == body(path)
    load_text(readme_block("### The collector"), CollectorSettings)


def test_inventory_example_is_valid() -> None:
    assets = {a.name: a for a in load_inventory(ROOT / "deploy/examples/inventory.yaml")}
    assert assets["web-01"].parents == ("core-sw-01",)


def test_readme_gives_the_two_setup_commands_that_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "    bash scripts/run.sh\n" in readme and "    bash scripts/test.sh\n" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci/run").read_text()
