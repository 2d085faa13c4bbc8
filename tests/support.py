"""Real processes for the tests: a collector, agents, Prometheus; bounded waits; stopped by PID.

Everything listens on 127.0.0.1 on a free high port picked by the kernel. Every process a test
starts is stopped by the PID it was started with, never by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll until ``predicate()`` is truthy; bounded in time (and so in count)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET a loopback URL; (0, b"") when nothing listens yet."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``schoolops`` command's code in this process (its start-up cost is paid once)."""
    from collector.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refusals
            code = int(exc.code or 0)
    result = subprocess.CompletedProcess(["schoolops", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"schoolops {' '.join(args)} failed ({code}):\n{result.stderr}")
    return result


@dataclass
class Process:
    """A child process started by a test, with its output in a log file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — a crash or power cut."""
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@dataclass
class Collector:
    directory: Path
    port: int = field(default_factory=free_port)
    tls: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    process: Process | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "data_dir": str(self.directory / "data"),
            "listen": {"host": "127.0.0.1", "port": self.port},
            "log": {"level": "debug", "format": "json"},
            "shutdown_timeout": "3s",
        }
        if self.tls:
            config["tls"] = self.tls
        config.update(self.extra)
        self.config_path = write_yaml(self.directory / "collector.yaml", config)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> Collector:
        self.process = Process(
            [sys.executable, "-m", "collector", "serve", "--config", str(self.config_path)],
            self.directory / "collector.log",
        )
        self.process.start()
        if wait:
            wait_until(self._ready, timeout=30, what=f"collector on port {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.running():
            raise AssertionError(f"collector exited ({self.process.popen.returncode}):\n{self.process.log()}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        if self.tls:
            return True
        return http_get(f"{self.url}/healthz")[0] == 200

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def token(self, asset: str) -> Path:
        path = self.directory / f"{asset}.token"
        cli("token", "create", asset, "--config", str(self.config_path), "--output", str(path))
        return path

    def assets(self) -> dict[str, dict[str, Any]]:
        out = cli("assets", "list", "--json", "--config", str(self.config_path)).stdout
        return {row["name"]: row for row in json.loads(out)}

    def metrics(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200
        return body.decode()


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in a Prometheus text page (labels must all match), else None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Agent:
    directory: Path
    collector_url: str
    token_file: Path
    asset: str
    interval: str = "1s"
    extra: dict[str, Any] = field(default_factory=dict)
    process: Process | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.directory / "state"
        self.write_config()

    def write_config(self, **overrides: Any) -> None:
        config: dict[str, Any] = {
            "collector": {"url": self.collector_url, "token_file": str(self.token_file), "retry_max": "1s",
                          "timeout": "3s"},
            "asset": {"name": self.asset, "site": "main-building", "role": "web"},
            "interval": self.interval,
            "state_dir": str(self.state_dir),
            "log": {"level": "debug", "format": "json"},
        }
        for key, value in {**self.extra, **overrides}.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        self.config_path = write_yaml(self.directory / "agent.yaml", config)

    def start(self) -> Agent:
        self.process = Process([sys.executable, "-m", "agent", "--config", str(self.config_path)], self.directory / "agent.log")
        self.process.start()
        return self

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None

    def state(self) -> dict[str, Any]:
        path = self.state_dir / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def spooled(self) -> list[Path]:
        spool = self.state_dir / "spool"
        return sorted(spool.glob("*.json")) if spool.exists() else []

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.process.log().splitlines() if self.process else []:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


def set_secret(collector: Collector, name: str, value: str) -> None:
    """`schoolops secret set NAME` as an operator runs it: the value on standard input."""
    result = subprocess.run([sys.executable, "-m", "collector", "secret", "set", name, "--config", str(collector.config_path)],
                            input=value, text=True, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def incidents(collector: Collector) -> list[dict[str, Any]]:
    return json.loads(cli("incidents", "list", "--all", "--json", "--config", str(collector.config_path)).stdout)


def faults_of(collector: Collector, asset: str) -> list[dict[str, Any]]:
    """Every fault (active or cleared) of ``asset``, across its incidents."""
    out = []
    for incident in incidents(collector):
        detail = json.loads(cli("incidents", "show", str(incident["id"]), "--json", "--config", str(collector.config_path)).stdout)
        out += [f for f in detail["faults"] if f["asset"] == asset]
    return out


def people_file(path: Path, roles: dict[str, list[str]], *, language: str = "en", languages: dict[str, str] | None = None,
                smtp_port: int | None = None) -> Path:
    """A minimal on-call file naming people and their roles (``languages``: a person's own, else ``language``),
    mailed at ``smtp_port`` on loopback. The rotation
    takes the first two on-call people; a stand-in ("stand.in", on-call) fills a missing one."""
    roles = dict(roles)
    on_duty = [pid for pid, r in roles.items() if "on-call" in r]
    for n in range(len(on_duty), 2):
        roles[f"stand.in{n or ''}"] = ["on-call"]
        on_duty.append(f"stand.in{n or ''}")
    people = [{"id": pid, "name": pid, "language": (languages or {}).get(pid, language), "roles": list(r),
               "contacts": [{"channel": "email", "address": f"{pid}@school.test"}]} for pid, r in roles.items()]
    return write_yaml(path, {
        "timezone": "Asia/Shanghai", "people": people,
        # mail to a loopback port nobody listens on: refused at once, never leaves this machine
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port or free_port(),
                      "security": "none", "sender": "schoolops@school.test"}],
        "schedule": {"start": "2026-01-05", "rotation": [{"primary": on_duty[0], "backup": on_duty[1]}]}})
