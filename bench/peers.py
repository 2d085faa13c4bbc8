"""The processes the figures measure or load, started on loopback and stopped by PID.

The collector is the real one (``python -m collector serve --config``, the config written by the
tests' :class:`~tests.support.Collector`); tokens and secrets go into its store through the same
functions ``schoolops token create`` and ``schoolops secret set`` use, many at a time.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core import Process, http_get, pinned, wait_until, which
from tests.support import Collector


def start_collector(directory: Path, extra: dict[str, Any], *, core: str | None = "server") -> Collector:
    """A real collector, quiet (warnings only), its process pinned to ``core`` from its first instruction."""
    collector = Collector(directory, extra={"log": {"level": "warning", "format": "json"}, **extra})
    argv = [sys.executable, "-m", "collector", "serve", "--config", str(collector.config_path)]
    collector.process = Process(pinned(argv, core) if core else argv, directory / "collector.log")
    collector.process.start()

    def ready() -> bool:
        assert collector.process is not None
        if not collector.process.running():
            raise RuntimeError(f"the collector exited:\n{collector.process.log()[-3000:]}")
        return http_get(f"{collector.url}/healthz", timeout=2)[0] == 200

    wait_until(ready, timeout=60, what="the collector")
    return collector


def create_tokens(collector: Collector, assets: list[str]) -> dict[str, str]:
    """asset → agent token, stored as ``schoolops token create`` stores them (one transaction)."""
    from collector import settings, tokens
    from collector.cli import query
    from collector.store.sql import create_token

    now = time.time()
    issued = {asset: tokens.issue(asset, now) for asset in assets}
    query(settings.load(collector.config_path), lambda c: [create_token(c, t.record) for t in issued.values()])
    return {asset: t.token for asset, t in issued.items()}


def set_secrets(collector: Collector, values: dict[str, str]) -> None:
    """Store secrets as ``schoolops secret set NAME`` does (encrypted with the collector's key)."""
    from collector import settings
    from collector.cli import query
    from collector.secrets import SecretBox, set_secret

    config = settings.load(collector.config_path)
    config.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    box = SecretBox(config.data_path / "secret.key")
    now = time.time()
    query(config, lambda c: [set_secret(c, box, n, v, at=now, actor="bench") for n, v in values.items()])


def stop_all(*processes: Process | Collector | None) -> None:
    for process in processes:
        if process is not None:
            process.stop()


# --- node_exporter -------------------------------------------------------------------------------------


def node_exporter_binary() -> str | None:
    return which("prometheus-node-exporter", "node_exporter")


def start_node_exporter(directory: Path, port: int) -> Process:
    binary = node_exporter_binary()
    assert binary is not None
    process = Process(pinned([binary, f"--web.listen-address=127.0.0.1:{port}"], "server"), directory / "node_exporter.log")
    process.start()
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200, timeout=20, what="node_exporter")
    return process


# --- SNMP: snmpd and snmpsim ----------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args[:6])} failed: {result.stderr.strip()}")
    return result


@contextmanager
def namespace(pairs: int = 0) -> Iterator[str | None]:
    """A network namespace of the harness's own: loopback (counters nobody else touches) and ``pairs``
    veth pairs (2 interfaces each), up — a switch with many ports for snmpd's ifTable. Yields its
    name, or None where namespaces are not permitted (not root)."""
    name = f"so-bench-{os.getpid()}-{pairs}"
    if shutil.which("ip") is None or ip("netns", "add", name, check=False).returncode != 0:
        yield None
        return
    try:
        commands = ["link set lo up"]
        for i in range(pairs):
            commands += [f"link add p{i} type veth peer name q{i}", f"link set p{i} up", f"link set q{i} up"]
        batch = subprocess.run(["ip", "-n", name, "-batch", "-"], input="\n".join(commands) + "\n", text=True,
                               capture_output=True, timeout=120, check=False)
        if batch.returncode != 0:
            raise RuntimeError(f"ip -batch failed: {batch.stderr.strip()[-500:]}")
        yield name
    finally:
        ip("netns", "del", name, check=False)  # removes the veth pairs inside


def in_namespace(namespace: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv] if namespace else argv


@dataclass
class Snmpd:
    port: int
    community: str
    namespace: str | None
    process: Process

    def stop(self) -> None:
        self.process.stop()


def start_snmpd(directory: Path, namespace: str | None, *, community: str = "bench") -> Snmpd:
    binary = which("snmpd")
    assert binary is not None
    port = free_udp_port()
    state = directory / "snmpd-state"
    state.mkdir(parents=True, exist_ok=True)
    conf = directory / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity {community} 127.0.0.1\n"
                    "engineID schoolops-bench\ndontLogTCPWrappersConnects yes\n")
    argv = [binary, "-f", "-C", "-c", str(conf), "-Lf", str(directory / "snmpd.log"), "-p", str(directory / "snmpd.pid"),
            "-m", "", "-I", "-smux"]
    process = Process(in_namespace(namespace, pinned(argv, "server")), directory / "snmpd.out",
                      env={**os.environ, "SNMP_PERSISTENT_DIR": str(state), "MIBS": ""})
    process.start()
    snmpd = Snmpd(port, community, namespace, process)
    probe = in_namespace(namespace, ["snmpget", "-v2c", "-c", community, "-On", "-m", "", "-t", "0.5", "-r", "0",
                                     f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"])
    wait_until(lambda: subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0,
               timeout=20, what="snmpd")
    return snmpd


SYS, IF_ENTRY, IFX_ENTRY = "1.3.6.1.2.1.1", "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"


def access_switch(i: int, ports: int = 8) -> str:
    """An access switch's .snmprec: system group, ifTable and ifXTable with moving 64-bit counters."""
    rows = [(f"{SYS}.1.0", "4", f"Simulated access switch {i}"), (f"{SYS}.2.0", "6", "1.3.6.1.4.1.9.1.1208"),
            (f"{SYS}.3.0", "67:numeric", "rate=100,initial=360000"), (f"{SYS}.5.0", "4", f"sw-{i:04d}")]
    for p in range(1, ports + 1):
        rate = 10_000 * p
        rows += [(f"{IF_ENTRY}.1.{p}", "2", str(p)), (f"{IF_ENTRY}.2.{p}", "4", f"GigabitEthernet0/{p}"),
                 (f"{IF_ENTRY}.3.{p}", "2", "6"), (f"{IF_ENTRY}.5.{p}", "66", "1000000000"),
                 (f"{IF_ENTRY}.7.{p}", "2", "1"), (f"{IF_ENTRY}.8.{p}", "2", "1"),
                 (f"{IF_ENTRY}.10.{p}", "65:numeric", f"rate={rate},wrap=1"), (f"{IF_ENTRY}.13.{p}", "65", "0"),
                 (f"{IF_ENTRY}.14.{p}", "65", "0"), (f"{IF_ENTRY}.16.{p}", "65:numeric", f"rate={rate},wrap=1"),
                 (f"{IF_ENTRY}.19.{p}", "65", "0"), (f"{IF_ENTRY}.20.{p}", "65", "0"),
                 (f"{IFX_ENTRY}.1.{p}", "4", f"Gi0/{p}"),
                 (f"{IFX_ENTRY}.6.{p}", "70:numeric", f"rate={rate},initial=5000000000"),
                 (f"{IFX_ENTRY}.10.{p}", "70:numeric", f"rate={rate},initial=7000000000"),
                 (f"{IFX_ENTRY}.15.{p}", "66", "1000"), (f"{IFX_ENTRY}.18.{p}", "4", "uplink" if p == 1 else "")]
    rows.sort(key=lambda row: tuple(int(x) for x in row[0].split(".")))
    return "".join(f"{oid}|{tag}|{value}\n" for oid, tag, value in rows)


@dataclass
class Snmpsim:
    port: int
    devices: int
    root: Path
    process: subprocess.Popen[bytes]

    @staticmethod
    def community(i: int) -> str:
        return f"sw{i:04d}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def snmpsim_binary() -> Path | None:
    found = Path(sys.executable).with_name("snmpsim-command-responder")
    return found if found.exists() else None


def start_snmpsim(devices: int, log: Path, namespace: str | None = None) -> Snmpsim:
    """``devices`` simulated switches on one UDP port, one community (= data file) each; unprivileged
    (``nobody``) from the start, as snmpsim requires; in ``namespace`` if given."""
    binary = snmpsim_binary()
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="schoolops-bench-snmpsim-"))  # nobody must read it: not under /root
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    for i in range(devices):
        (data / f"{Snmpsim.community(i)}.snmprec").write_text(access_switch(i))
    for folder in (root, data):
        folder.chmod(0o755)
    argv = [str(binary), f"--data-dir={data}", f"--cache-dir={cache}", "--logging-method=null"]
    if os.geteuid() == 0:
        shutil.chown(cache, "nobody", "nogroup")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    port = free_udp_port()
    argv.append(f"--agent-udpv4-endpoint=127.0.0.1:{port}")
    with log.open("wb") as out:
        process = subprocess.Popen(in_namespace(namespace, pinned(argv, "client")), stdout=out,
                                   stderr=subprocess.STDOUT, cwd=root)
    sim = Snmpsim(port, devices, root, process)
    probe = in_namespace(namespace, ["snmpget", "-v2c", "-c", Snmpsim.community(0), "-On", "-m", "", "-t", "1",
                                     "-r", "0", f"127.0.0.1:{port}", f"{SYS}.5.0"])
    try:
        wait_until(lambda: process.poll() is None and which("snmpget") is not None and subprocess.run(
            probe, capture_output=True, timeout=10, check=False).returncode == 0, timeout=120, interval=0.5,
            what="snmpsim")
    except BaseException:
        sim.stop()
        raise
    return sim


# --- SMTP: the notification's receiver -------------------------------------------------------------------


@dataclass
class TimedMailbox:
    """An aiosmtpd handler that notes when each message arrived (time.time(), on arrival)."""

    received: list[tuple[float, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        at = time.time()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append((at, message))
        return "250 OK"

    def snapshot(self) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.received)


@contextmanager
def smtp_receiver(port: int) -> Iterator[TimedMailbox]:
    from aiosmtpd.controller import Controller

    mailbox = TimedMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
