"""The SSH transport of a runbook ``ssh`` step: one program, its arguments quoted, on one server.

paramiko only, never an ``ssh`` subprocess. The host key is checked against the asset's own
``known_hosts`` file (never the system's), and an unknown or changed key is refused before anything
is sent. Authentication uses the private key from the credential store only (no agent, no key
files on disk). The command runs on a pseudo-terminal: closing the channel at the timeout makes
sshd hang up the terminal, so the kernel sends SIGHUP to the command and its foreground process
group and nothing is left running on the server. The PTY merges standard output and error; the
output is kept bounded (head and tail) while it is read. paramiko blocks, so each session runs in
``asyncio.to_thread``. The key and its passphrase are never logged nor part of an error message.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from collector import CollectorError

logger = structlog.get_logger("schoolops.runbooks.ssh")

_READ_SLICE = 0.2  # seconds one recv waits before the deadline and cancellation are checked again
_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


@dataclass(frozen=True, repr=False)
class SshTarget:
    host: str  # an IPv4 or IPv6 address, or a name
    port: int
    username: str
    known_hosts: str  # an OpenSSH known_hosts file for this host ([host]:port entries for ports other than 22)
    private_key: str  # the private key text (OpenSSH or PEM; ed25519, ecdsa or RSA)
    passphrase: str | None = None

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback through repr()
        return f"SshTarget({self.label()!r}, known_hosts={self.known_hosts!r})"

    def label(self) -> str:
        return f"{self.username}@{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    def known_hosts_entry(self) -> str:  # how this host is named in known_hosts
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class SshResult:
    exit_status: int | None  # None when stopped at the timeout (or killed by a signal: no status sent)
    output: str  # standard output and error (merged by the PTY), bounded to head and tail
    duration: float
    timed_out: bool


class SshError(CollectorError):
    """An SSH step could not run. ``permanent``: retrying will not help until a person acts."""

    permanent = False

    def __init__(self, target: str, reason: str, *, permanent: bool | None = None) -> None:
        super().__init__(f"{target}: {reason}")
        self.target, self.reason = target, reason
        self.permanent = type(self).permanent if permanent is None else permanent


class SshHostKeyChanged(SshError):
    """The server's host key differs from known_hosts: possibly an impostor. Never retried."""
    permanent = True


class SshHostKeyUnknown(SshError):
    """The server is not in known_hosts (or the file is missing): it cannot be trusted. Never retried."""
    permanent = True


class SshAuthFailed(SshError):
    """The server refused the key."""
    permanent = True


class SshUnreachable(SshError):
    """The TCP connection failed (refused, no route, unknown name)."""


class SshTimeout(SshError):
    """The server did not complete the connection or the login in time."""


def command_line(argv: Sequence[str]) -> str:
    """The one string sent to the server, every argument quoted: the user's login shell (a POSIX sh,
    bash, dash, zsh) turns it back into exactly ``argv``; nothing in an argument is expanded or run."""
    if not argv:
        raise ValueError("argv: a command needs at least the program")
    for index, arg in enumerate(argv):
        if "\x00" in arg:
            raise ValueError(f"argv[{index}]: an argument cannot contain a NUL character")
    return " ".join(shlex.quote(arg) for arg in argv)


async def run_ssh(target: SshTarget, argv: Sequence[str], *, timeout: float, connect_timeout: float = 10.0,
                  max_output: int = 16000) -> SshResult:
    """Run ``argv`` on ``target``, hung up after ``timeout`` seconds. A command that ran (whatever its exit
    status) is an :class:`SshResult`; :class:`SshError` (a subclass) means nothing was run."""
    if timeout <= 0 or connect_timeout <= 0 or max_output < 64:
        raise ValueError("timeout and connect_timeout must be positive, max_output at least 64")
    command = command_line(argv)
    key = load_private_key(target)
    stop = threading.Event()
    logger.debug("ssh_step_start", target=target.label(), program=argv[0], arguments=len(argv) - 1)
    try:
        result = await asyncio.to_thread(_session, target, key, command, timeout, connect_timeout, max_output, stop)
    except asyncio.CancelledError:
        stop.set()  # the worker thread closes the channel, which hangs up the remote command
        raise
    except SshError as exc:
        logger.info("ssh_step_failed", target=exc.target, error_kind=type(exc).__name__, reason=exc.reason)
        raise
    logger.info("ssh_step_done", target=target.label(), program=argv[0], exit_status=result.exit_status,
                timed_out=result.timed_out, duration=round(result.duration, 3), output_chars=len(result.output))
    return result


def load_private_key(target: SshTarget) -> paramiko.PKey:
    """The key object from the stored text; SshError (permanent) when it cannot be read."""
    needs_passphrase = False
    for key_type in _KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(target.private_key), password=target.passphrase)
        except paramiko.PasswordRequiredException:
            needs_passphrase = True
        except Exception:  # noqa: BLE001, S112 - a damaged key fails in many ways in the parsers; try the next type
            continue
    fallback = _via_cryptography(target)
    if fallback is not None:
        return fallback
    raise SshError(target.label(), "the stored private key is encrypted and no passphrase secret is configured"
                   if needs_passphrase and target.passphrase is None else
                   "the stored private key could not be read (not an ed25519, ecdsa or RSA private key in OpenSSH "
                   "or PEM form, or a wrong passphrase); store it again with `schoolops secret set`", permanent=True)


def _via_cryptography(target: SshTarget) -> paramiko.PKey | None:
    """paramiko misreads an OpenSSH-format key whose blank comment ends the data without padding (about
    half of the ECDSA keys made with ``-C ''``: paramiko issue 2445); cryptography reads it."""
    try:
        key = serialization.load_ssh_private_key(
            target.private_key.encode(), password=target.passphrase.encode() if target.passphrase else None)
    except Exception:  # noqa: BLE001 - not such a key either: the caller says it could not be read
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return paramiko.ECDSAKey(vals=(key, key.public_key()))
    if isinstance(key, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=key)
    return None


def _session(target: SshTarget, key: paramiko.PKey, command: str, timeout: float, connect_timeout: float,
             max_output: int, stop: threading.Event) -> SshResult:
    client = paramiko.SSHClient()
    try:
        _connect(client, target, key, connect_timeout)
        if stop.is_set():
            raise SshError(target.label(), "cancelled before the command was started")
        return _execute(client, target, command, timeout, connect_timeout, max_output, stop)
    finally:
        client.close()


def _connect(client: paramiko.SSHClient, target: SshTarget, key: paramiko.PKey, connect_timeout: float) -> None:
    label = target.label()
    try:
        client.load_host_keys(target.known_hosts)  # this host's file only, never the system's
    except FileNotFoundError:
        raise SshHostKeyUnknown(label, f"known_hosts file {target.known_hosts} does not exist: no host key can be "
                                "verified, so the server was not contacted and the step was not run") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SshError(label, f"known_hosts file {target.known_hosts} cannot be read: {type(exc).__name__}: {exc}",
                       permanent=True) from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(target.host, port=target.port, username=target.username, pkey=key, timeout=connect_timeout,
                       banner_timeout=connect_timeout, auth_timeout=connect_timeout, channel_timeout=connect_timeout,
                       allow_agent=False, look_for_keys=False)
    except paramiko.BadHostKeyException as exc:
        raise _classify(target, exc, connect_timeout) from None
    except paramiko.AuthenticationException:
        raise SshAuthFailed(label, f"the server refused the key for user {target.username} (is its public key in "
                            "the user's authorized_keys on the server?); the step was not run") from None
    except TimeoutError:
        raise SshTimeout(label, f"no SSH connection and login within {connect_timeout:g}s; "
                         "the step was not run") from None
    except paramiko.SSHException as exc:
        transport = client.get_transport()
        cause = transport.get_exception() if transport is not None else None  # the handshake's own failure
        raise _classify(target, cause if isinstance(cause, paramiko.SSHException) else exc, connect_timeout) from None
    except OSError as exc:  # refused, no route, unknown name (NoValidConnectionsError is one too)
        raise SshUnreachable(label, f"TCP connection failed ({_os_reason(exc)}): wrong address or port, server "
                             "down, or a firewall; the step was not run") from None
    except EOFError:
        raise SshError(label, "the server closed the connection during the handshake; the step was not run") from None


def _classify(target: SshTarget, exc: paramiko.SSHException, connect_timeout: float) -> SshError:
    label, message, kh = target.label(), str(exc), target.known_hosts
    keyscan = f"ssh-keyscan -p {target.port} {target.host}"
    console = "the fingerprint on the server's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"
    if isinstance(exc, paramiko.BadHostKeyException):
        return SshHostKeyChanged(label, (
            f"the host key differs from the one in known_hosts file {kh}: POSSIBLE IMPOSTOR. The server offered "
            f"{exc.key.get_name()} {exc.key.fingerprint}, known_hosts has {exc.expected_key.get_name()} "
            f"{exc.expected_key.fingerprint}. The step was not run. The server may have been reinstalled or "
            f"re-keyed, or someone is in between: check {console}, then replace the entry: "
            f"ssh-keygen -R '{target.known_hosts_entry()}' -f {kh}; {keyscan} >> {kh}"))
    if "not found in known_hosts" in message:
        return SshHostKeyUnknown(label, (
            f"{target.known_hosts_entry()} is not in known_hosts file {kh}, so the server is not trusted and the "
            f"step was not run. Compare {console} with `{keyscan} | ssh-keygen -lf -`, and only then add it: "
            f"{keyscan} >> {kh}"))
    if "banner" in message.lower() or "No existing session" in message or isinstance(exc.__context__, TimeoutError):
        # no greeting; or paramiko went on to log in after a handshake that did not finish in time
        return SshTimeout(label, f"no SSH handshake within {connect_timeout:g}s (is this an SSH server?); "
                          "the step was not run")
    return SshError(label, f"SSH session failed: {' '.join(message.split())[:300]}; the step was not run")


def _os_reason(exc: OSError) -> str:
    errors = getattr(exc, "errors", None)  # NoValidConnectionsError: one error per address tried
    if isinstance(errors, dict) and errors:
        exc = next(iter(errors.values()))
    return exc.strerror or type(exc).__name__


def _execute(client: paramiko.SSHClient, target: SshTarget, command: str, timeout: float, connect_timeout: float,
             max_output: int, stop: threading.Event) -> SshResult:
    transport = client.get_transport()
    assert transport is not None  # connect() succeeded
    started = time.monotonic()
    deadline, output = started + timeout, _BoundedText(max_output)
    try:
        channel = transport.open_session(timeout=connect_timeout)
        channel.get_pty(term="dumb", width=200, height=50)
        channel.exec_command(command)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        raise SshError(target.label(), f"the server refused to start the command: {reason}") from None
    channel.set_combine_stderr(True)
    timed_out = False
    try:
        while True:
            if stop.is_set() or time.monotonic() >= deadline:
                timed_out = not stop.is_set()
                break
            channel.settimeout(max(min(_READ_SLICE, deadline - time.monotonic()), 0.001))
            try:
                data = channel.recv(65536)
            except TimeoutError:
                continue
            if not data:  # end of output: the command exited (or its terminal was closed)
                break
            output.add(data)
        exit_status: int | None = None
        if not timed_out and not stop.is_set():
            if _status_arrived(channel, deadline):
                status = channel.recv_exit_status()
                exit_status = status if status >= 0 else None  # -1: no status sent (killed by a signal)
            else:
                timed_out = True
    finally:
        channel.close()  # with a PTY, sshd hangs up the terminal: SIGHUP to whatever still runs
    return SshResult(exit_status=exit_status, output=output.text(), duration=time.monotonic() - started,
                     timed_out=timed_out)


def _status_arrived(channel: paramiko.Channel, deadline: float) -> bool:
    """Wait for the exit status (sent shortly after the output ends); False past the deadline."""
    while not channel.exit_status_ready() and time.monotonic() < deadline:
        channel.status_event.wait(max(min(deadline - time.monotonic(), _READ_SLICE), 0.0))
    return bool(channel.exit_status_ready())


class _BoundedText:
    """Decoded output kept as its first and last characters, with the count of what was cut."""

    def __init__(self, limit: int) -> None:
        self.limit, self.head_limit = limit, limit // 2 + 1
        self.head, self.tail, self.total = "", "", 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending_cr = False

    def add(self, data: bytes, *, final: bool = False) -> None:
        text = ("\r" if self._pending_cr else "") + self._decoder.decode(data, final=final)
        self._pending_cr = text.endswith("\r") and not final
        if self._pending_cr:
            text = text[:-1]
        text = text.replace("\r\n", "\n")  # the terminal's line ends, back to the program's
        self.total += len(text)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += text[:room]
            text = text[room:]
        if text:
            self.tail = (self.tail + text)[-self.limit:]

    def text(self) -> str:
        self.add(b"", final=True)
        if self.total <= self.limit:
            return self.head + self.tail
        budget = max(self.limit - len(_marker(self.total)), 0)  # the marker's count is at most total
        head = self.head[: budget // 2]
        tail_size = min(budget - len(head), len(self.tail))
        tail = self.tail[len(self.tail) - tail_size:] if tail_size > 0 else ""
        return head + _marker(self.total - len(head) - len(tail)) + tail


def _marker(cut: int) -> str:
    return f"\n[… {cut} characters cut …]\n"
