"""A Net-SNMP snmpd on 127.0.0.1 for the tests (community public-e2e), started and stopped by PID."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import Process


def start_snmpd(directory: Path, port: int) -> Process:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nengineID schoolops-test\nrocommunity public-e2e 127.0.0.1\n"
                    "dontLogTCPWrappersConnects yes\n")
    process = Process(["/usr/sbin/snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(directory / "snmpd.log"),
                       "-p", str(directory / "snmpd.pid"), "-m", "", "-I", "-smux"], directory / "snmpd.out",
                      env={**os.environ, "SNMP_PERSISTENT_DIR": str(directory), "MIBS": ""})
    process.start()
    return process
