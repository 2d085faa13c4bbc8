"""A real OpenSSH sshd for the runbook SSH tests: 127.0.0.1 and ::1, a free port, its own keys and config.

It accepts one client key the test made (more with ``authorize``), logs VERBOSE to a file the test
can read (who logged in, which sessions started), and is stopped by the PID it was started with.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.runbooks.ssh import SshTarget
from tests.support import Process, free_port

SSHD = "/usr/sbin/sshd"


def keygen(path: Path, *, kind: str = "ed25519", passphrase: str = "", pem: bool = False) -> str:
    """A new key pair at ``path`` (private) and ``path.pub``; returns the public key line (type and base64)."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "", "-f", str(path)]
    if kind == "rsa":
        argv += ["-b", "2048"]
    if pem:
        argv += ["-m", "PEM"]
    subprocess.run(argv, check=True, timeout=30, capture_output=True)
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


class Sshd:
    """One sshd process; ``start()`` waits (bounded) until its port accepts connections."""

    host = "127.0.0.1"

    def __init__(self, directory: Path, *, extra_config: str = "") -> None:
        """``extra_config``: more sshd_config lines (e.g. ``SetEnv PATH=…`` for a test's own commands)."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.username = getpass.getuser()
        self.log_path = directory / "sshd.log"
        self.known_hosts = directory / "known_hosts"
        self.host_key_path = directory / "host_key"
        self.client_key_path = directory / "client_key"
        self.authorized_keys = directory / "authorized_keys"
        self.process: Process | None = None
        self.host_key = keygen(self.host_key_path)
        self.authorized_keys.write_text(keygen(self.client_key_path) + "\n")
        self.client_key = self.client_key_path.read_text()
        self.known_hosts.write_text(f"[{self.host}]:{self.port},[::1]:{self.port} {self.host_key}\n")
        self.config_path = directory / "sshd_config"
        self.config_path.write_text(f"""\
ListenAddress {self.host}
ListenAddress ::1
Port {self.port}
HostKey {self.host_key_path}
PidFile {directory / 'sshd.pid'}
AuthorizedKeysFile {self.authorized_keys}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
LogLevel VERBOSE
{extra_config}""")

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        self.process = Process([SSHD, "-D", "-f", str(self.config_path), "-E", str(self.log_path)],
                               self.directory / "sshd.out")
        self.process.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                if not self.process.running() or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"sshd did not start:\n{self.process.log()}\n{self.log_text()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop this sshd (its own PID only); sessions it forked end with their connections."""
        if self.process is not None:
            self.process.stop(timeout=5)

    def replace_host_key(self) -> str:
        """Restart with a new host key: the one in ``known_hosts`` is now wrong. Returns the new key."""
        self.stop()
        self.host_key = keygen(self.host_key_path)
        self.start()
        return self.host_key

    def authorize(self, public_key: str) -> None:
        with self.authorized_keys.open("a") as handle:
            handle.write(public_key + "\n")

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def accepted_logins(self) -> int:
        """How many logins sshd accepted (every key that got in)."""
        return self.log_text().count("Accepted publickey for ")

    def sessions(self) -> int:
        """How many sessions (commands) sshd started."""
        return self.log_text().count("Starting session: ")

    def target(self, **overrides: Any) -> SshTarget:
        fields: dict[str, Any] = {"host": self.host, "port": self.port, "username": self.username,
                                  "known_hosts": str(self.known_hosts), "private_key": self.client_key}
        return SshTarget(**(fields | overrides))


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A started sshd that accepts ``sshd.client_key``; stopped at teardown."""
    if not Path(SSHD).exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    server = Sshd(tmp_path / "sshd").start()
    try:
        yield server
    finally:
        server.stop()
