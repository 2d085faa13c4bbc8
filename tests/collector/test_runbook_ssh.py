"""The runbook SSH transport against a real OpenSSH sshd: arguments arrive verbatim, exit statuses
and bounded output come back, host keys are enforced before anything runs, and a step past its
timeout leaves nothing running on the server."""

from __future__ import annotations

import asyncio
import io
import secrets
import shlex
import time

import paramiko
import psutil
import pytest

from collector.runbooks.ssh import (
    SshAuthFailed,
    SshError,
    SshHostKeyChanged,
    SshHostKeyUnknown,
    SshTarget,
    SshTimeout,
    SshUnreachable,
    command_line,
    run_ssh,
)
from tests import ssh_peers
from tests.ssh_peers import Sshd, keygen
from tests.support import free_port

sshd = ssh_peers.sshd  # the fixture: a real sshd per test

pytestmark = pytest.mark.timeout(60)
peers = pytest.mark.peers


def test_command_line_quotes_every_argument() -> None:
    argv = ["printf", "%s\n", "it's $HOME; rm -rf /", "`id`", "$(id)", "*", "", "a  b\tc", "line1\nline2", "中文"]
    line = command_line(argv)
    assert shlex.split(line) == argv
    assert line.startswith("printf ")


def test_command_line_refuses_nul_and_empty() -> None:
    with pytest.raises(ValueError, match=r"argv\[1\].*NUL"):
        command_line(["echo", "a\x00b"])
    with pytest.raises(ValueError, match="at least the program"):
        command_line([])


@peers
async def test_arguments_arrive_verbatim(sshd: Sshd) -> None:
    owned = sshd.directory / "owned"
    tricky = ["it's $HOME; rm -rf /", "`id`", "$(id)", "*", "", "a  b\tc", "~", f"x > {owned}", "中文 ✓"]
    result = await run_ssh(sshd.target(), ["printf", "[%s]\n", *tricky], timeout=10)
    assert result.exit_status == 0 and not result.timed_out
    assert result.output == "".join(f"[{arg}]\n" for arg in tricky)
    assert not owned.exists()
    echoed = await run_ssh(sshd.target(), ["echo", "it's $HOME; rm -rf /"], timeout=10)
    assert echoed.output == "it's $HOME; rm -rf /\n"
    assert sshd.sessions() == 2


@peers
async def test_ipv6_address(sshd: Sshd) -> None:
    result = await run_ssh(sshd.target(host="::1"), ["echo", "over v6"], timeout=10)
    assert (result.exit_status, result.output) == (0, "over v6\n")
    assert "Accepted publickey for" in sshd.log_text() and "from ::1 port" in sshd.log_text()


@peers
async def test_exit_status_is_reported(sshd: Sshd) -> None:
    assert (await run_ssh(sshd.target(), ["false"], timeout=10)).exit_status == 1
    three = await run_ssh(sshd.target(), ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert three.exit_status == 3 and not three.timed_out
    assert three.output == "out\nerr\n"  # the PTY merges standard error
    missing = await run_ssh(sshd.target(), ["no-such-program-here"], timeout=10)
    assert missing.exit_status == 127 and "not found" in missing.output


@peers
async def test_long_output_keeps_head_and_tail(sshd: Sshd) -> None:
    full = "".join(f"{n}\n" for n in range(1, 20001))
    result = await run_ssh(sshd.target(), ["seq", "1", "20000"], timeout=20, max_output=2000)
    assert result.exit_status == 0
    assert len(result.output) <= 2000
    head, rest = result.output.split("\n[… ", 1)
    count, tail = rest.split(" characters cut …]\n", 1)
    assert head.startswith("1\n2\n3\n") and tail.endswith("19999\n20000\n")
    assert full.startswith(head) and full.endswith(tail)
    assert int(count) == len(full) - len(head) - len(tail)
    assert len(head) > 900 and len(tail) > 900


@peers
async def test_unknown_host_is_refused_before_login(sshd: Sshd) -> None:
    other = keygen(sshd.directory / "other_host_key")
    sshd.known_hosts.write_text(f"[127.0.0.1]:{free_port()} {other}\n")  # some other server only
    with pytest.raises(SshHostKeyUnknown) as caught:
        await run_ssh(sshd.target(), ["touch", str(sshd.directory / "ran")], timeout=10)
    message = str(caught.value)
    assert f"[127.0.0.1]:{sshd.port} is not in known_hosts file {sshd.known_hosts}" in message
    assert "ssh-keyscan" in message and "not run" in message
    assert caught.value.permanent
    assert sshd.accepted_logins() == 0 and sshd.sessions() == 0
    assert not (sshd.directory / "ran").exists()


@peers
async def test_missing_known_hosts_file_is_refused(sshd: Sshd) -> None:
    target = sshd.target(known_hosts=str(sshd.directory / "no-such-file"))
    with pytest.raises(SshHostKeyUnknown, match="does not exist"):
        await run_ssh(target, ["true"], timeout=10)
    assert sshd.accepted_logins() == 0


@peers
async def test_changed_host_key_is_refused_with_a_clear_message(sshd: Sshd) -> None:
    sshd.replace_host_key()
    with pytest.raises(SshHostKeyChanged) as caught:
        await run_ssh(sshd.target(), ["touch", str(sshd.directory / "ran")], timeout=10)
    message = str(caught.value)
    assert f"the host key differs from the one in known_hosts file {sshd.known_hosts}" in message
    assert "POSSIBLE IMPOSTOR" in message and "The step was not run" in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {sshd.known_hosts}" in message
    assert caught.value.permanent and caught.value.target == f"{sshd.username}@127.0.0.1:{sshd.port}"
    assert sshd.accepted_logins() == 0 and not (sshd.directory / "ran").exists()


@peers
async def test_a_key_the_server_does_not_know_is_an_auth_failure(sshd: Sshd) -> None:
    keygen(sshd.directory / "stranger_key")
    stranger = (sshd.directory / "stranger_key").read_text()
    with pytest.raises(SshAuthFailed) as caught:
        await run_ssh(sshd.target(private_key=stranger), ["true"], timeout=10)
    assert caught.value.permanent and "refused the key" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)
    assert sshd.accepted_logins() == 0


@peers
@pytest.mark.parametrize(("kind", "pem", "passphrase"), [
    ("ecdsa", False, ""), ("rsa", True, ""), ("ed25519", False, "correct horse"),
])
async def test_other_key_types_and_passphrases(sshd: Sshd, kind: str, pem: bool, passphrase: str) -> None:
    sshd.authorize(keygen(sshd.directory / "key", kind=kind, pem=pem, passphrase=passphrase))
    target = sshd.target(private_key=(sshd.directory / "key").read_text(), passphrase=passphrase or None)
    result = await run_ssh(target, ["echo", "ok"], timeout=10)
    assert (result.exit_status, result.output) == (0, "ok\n")


@peers
async def test_an_ecdsa_key_paramiko_alone_misreads_still_works(sshd: Sshd) -> None:
    for _ in range(40):  # about half of the ECDSA keys with a blank comment end without padding
        public = keygen(sshd.directory / "ecdsa", kind="ecdsa")
        text = (sshd.directory / "ecdsa").read_text()
        try:
            paramiko.ECDSAKey.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            break
    else:
        pytest.skip("no unpadded key came up (or paramiko was fixed)")
    sshd.authorize(public)
    result = await run_ssh(sshd.target(private_key=text), ["echo", "ok"], timeout=10)
    assert (result.exit_status, result.output) == (0, "ok\n")


@peers
async def test_encrypted_key_without_passphrase_says_so(sshd: Sshd) -> None:
    keygen(sshd.directory / "locked", passphrase="s3cret-pass")
    target = sshd.target(private_key=(sshd.directory / "locked").read_text())
    with pytest.raises(SshError, match="encrypted and no passphrase") as caught:
        await run_ssh(target, ["true"], timeout=10)
    assert caught.value.permanent
    with pytest.raises(SshError, match="could not be read") as wrong:
        await run_ssh(sshd.target(private_key=target.private_key, passphrase="wrong"), ["true"], timeout=10)
    assert "wrong" not in wrong.value.reason.replace("a wrong passphrase", "")
    assert sshd.accepted_logins() == 0


@pytest.mark.parametrize("text", [
    "not a key at all SECRET-MARKER-7731",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-MARKER-7731\n-----END OPENSSH PRIVATE KEY-----\n",
])
async def test_a_text_that_is_no_key_is_refused_without_echoing_it(text: str) -> None:
    target = SshTarget("127.0.0.1", free_port(), "root", "/nonexistent", text)
    with pytest.raises(SshError) as caught:
        await run_ssh(target, ["true"], timeout=5)
    assert type(caught.value) is SshError and caught.value.permanent
    assert "stored private key could not be read" in str(caught.value)
    assert "SECRET-MARKER" not in str(caught.value) and "SECRET-MARKER" not in repr(target)


@peers
async def test_closed_port_is_unreachable(sshd: Sshd) -> None:
    with pytest.raises(SshUnreachable) as caught:
        await run_ssh(sshd.target(port=free_port()), ["true"], timeout=5, connect_timeout=3)
    assert not caught.value.permanent and "refused" in str(caught.value).lower()


@peers
async def test_a_silent_server_is_a_timeout(sshd: Sshd) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never greets
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(SshTimeout, match="no SSH handshake within 1s"):
            await run_ssh(sshd.target(port=port), ["true"], timeout=5, connect_timeout=1)
        assert time.monotonic() - started < 5
    finally:
        server.close()


def _remote(argument: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if argument in (process.info["cmdline"] or []):
            found.append(process)
    return found


async def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


@peers
@pytest.mark.parametrize("shape", ["direct", "child of a shell"])
async def test_timeout_hangs_up_the_remote_command(sshd: Sshd, shape: str) -> None:
    seconds = f"37.{secrets.randbelow(10**6):06d}"  # unique: other test runs may share this machine
    argv = ["sleep", seconds] if shape == "direct" else ["sh", "-c", f"sleep {seconds}; echo never"]
    step = asyncio.create_task(run_ssh(sshd.target(), argv, timeout=2.0))
    assert await _wait_for(lambda: _remote(seconds), 10), "the remote sleep never started"
    started = time.monotonic()
    result = await step
    assert result.timed_out and result.exit_status is None
    assert 1.5 <= result.duration < 6 and time.monotonic() - started < 6
    assert "never" not in result.output
    assert await _wait_for(lambda: not _remote(seconds), 5), f"still running on the server: {_remote(seconds)}"


@peers
async def test_a_cancelled_step_hangs_up_the_remote_command(sshd: Sshd) -> None:
    seconds = f"38.{secrets.randbelow(10**6):06d}"
    step = asyncio.create_task(run_ssh(sshd.target(), ["sleep", seconds], timeout=30))
    assert await _wait_for(lambda: _remote(seconds), 10), "the remote sleep never started"
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    assert await _wait_for(lambda: not _remote(seconds), 5), f"still running on the server: {_remote(seconds)}"
