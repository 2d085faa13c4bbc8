"""HTTPS between agent and collector, with the CA that `schoolops ca init` / `cert issue` make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support import Agent, Collector, cli, wait_until


def make_ca(directory: Path) -> Path:
    cli("ca", "init", "--dir", str(directory))
    return directory / "ca.pem"


def test_agent_with_the_right_ca_reports_and_one_with_a_wrong_ca_refuses(
    tmp_path: Path, start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    ca = make_ca(tmp_path / "ca")
    wrong_ca = make_ca(tmp_path / "other-ca")
    issued = cli("cert", "issue", "127.0.0.1", "localhost", "--ca-dir", str(tmp_path / "ca"), "--out", str(tmp_path / "certs"))
    assert "cert_file" in issued.stdout
    collector = start_collector(
        tls={"cert_file": str(tmp_path / "certs" / "127.0.0.1.pem"), "key_file": str(tmp_path / "certs" / "127.0.0.1-key.pem")}
    )
    assert collector.url.startswith("https://")

    good = make_agent(collector, "web-01", extra={"collector": {"ca_file": str(ca)}}).start()
    bad = make_agent(collector, "web-02", extra={"collector": {"ca_file": str(wrong_ca)}}).start()

    wait_until(lambda: collector.assets().get("web-01", {}).get("reports_applied", 0) >= 2, what="reports over HTTPS")
    refused = wait_until(
        lambda: [e for e in bad.log_events() if e.get("event") == "report_send_failed"],
        what="the agent with the wrong CA to say why it does not send",
    )
    assert "certificate does not verify" in refused[0]["reason"] and str(wrong_ca) in refused[0]["reason"]
    assert refused[0]["level"] == "error"
    assert "web-02" not in collector.assets()  # nothing reached the collector
    wait_until(lambda: len(bad.spooled()) >= 2, what="the refused reports kept in the spool")
    good.stop()
    bad.stop()
    assert "so_" not in good.process.log() + bad.process.log() + collector.process.log()  # type: ignore[union-attr]
