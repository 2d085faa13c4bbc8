"""Configuration backup: each device's running configuration in a git repository (dulwich, no git binary).

The repository is an ordinary git repository with a working tree (browse it with any git tool:
``git -C DATA/config-backup log -p sw-lab-1.cfg``): one file per device, ``<device>.cfg``, and
one commit per change of one device. A backup whose configuration did not change makes no commit.

Devices rewrite a few lines on their own, without anyone changing anything; those lines are
removed before the text is compared and stored, so they never make a commit (``VOLATILE_LINES``):

- Cisco IOS / IOS-XE / Ruijie: ``Building configuration...``, ``Current configuration : N bytes``,
  ``! Last configuration change at … by USER``, ``! NVRAM config last updated at …``,
  ``! No configuration change since last restart``, ``ntp clock-period N`` (IOS rewrites it as
  NTP disciplines the clock), and the ``Load for …`` / ``Time source is …`` lines of timestamped
  exec sessions.
- Cisco NX-OS: ``!Command: …``, ``!Running configuration last done at: …``, ``!Time: …``.
- Huawei VRP: ``!Last configuration was updated at …``, ``!Last configuration was saved at …``.
- H3C / HPE Comware and Linux: nothing.

Who made a change is read from the raw text before filtering (:func:`who_changed`) and recorded
in the commit message and the :class:`Change`. All methods block (disk, dulwich): call them
through ``asyncio.to_thread``; one lock serialises the writers of one ``ConfigRepo``.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from collector import CollectorError
from collector.network.cli import run_commands
from collector.network.config import CliConfig

_CISCO = (
    r"Building configuration\.\.\.",
    r"Current configuration : \d+ bytes",
    r"! Last configuration change at .*",
    r"! NVRAM config last updated at .*",
    r"! No configuration change since last restart",
    r"ntp clock-period \d+",
    r"Load for .*",
    r"Time source is .*",
)
_VRP = (r"!Last configuration was updated at .*", r"!Last configuration was saved at .*")

VOLATILE_LINES: dict[str, tuple[str, ...]] = {
    "cisco_ios": _CISCO,
    "cisco_xe": _CISCO,
    "ruijie_os": _CISCO,
    "cisco_nxos": (r"!Command: .*", r"!Running configuration last done at: .*", r"!Time: .*"),
    "huawei": _VRP,
    "huawei_vrpv8": _VRP,
    "hp_comware": (),
    "h3c_comware": (),
    "linux": (),
}
"""Per device type: regular expressions for whole lines that change without a configuration change."""

_VOLATILE = {kind: re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
             for kind, patterns in VOLATILE_LINES.items()}
_ANY_VOLATILE = re.compile("|".join(f"(?:{p})" for p in sorted({p for ps in VOLATILE_LINES.values() for p in ps})))

# "! Last configuration change at 10:02:03 UTC Mon Nov 23 2026 by admin" (IOS, IOS-XE, Ruijie)
# "!Last configuration was updated at 2026-11-23 10:02:03+08:00 by admin" (VRP, when it names one)
_WHO = re.compile(r"^\s*!\s*Last configuration (?:change|was updated) at .*? by (\S+)\s*$")

_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


class BackupError(CollectorError):
    """The configuration repository cannot answer: unknown device or commit, or a broken repository."""


@dataclass(frozen=True)
class Change:
    device: str
    commit_id: str  # 40 hex digits
    diff: str  # unified diff of the stored (filtered) configuration
    added: int  # lines
    removed: int
    at: float  # unix time of the backup that saw the change
    changed_by: str | None = None  # the user the device names, if it does (who_changed)
    first: bool = False  # the device's first backup: everything is "added"


def strip_volatile(text: str, device_type: str | None = None) -> str:
    """The configuration as stored: volatile lines removed, LF line ends, no trailing blanks.

    ``device_type`` None applies every family's filter (each only matches its own vendor's lines).
    """
    pattern = _ANY_VOLATILE if device_type is None else _VOLATILE.get(device_type)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    if pattern is not None:
        lines = [line for line in lines if not pattern.fullmatch(line)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def who_changed(diff_text: str, device_type: str) -> str | None:
    """The user the device names as the last to change its configuration, or None. Pure.

    Works on raw configuration text and on a unified diff of it (then only the new side counts).
    Cisco IOS/IOS-XE/Ruijie name the user in "! Last configuration change at … by USER", VRP in
    "!Last configuration was updated at … by USER"; NX-OS, Comware and Linux name nobody.
    """
    if device_type in ("cisco_nxos", "hp_comware", "h3c_comware", "linux"):
        return None
    for line in diff_text.splitlines():
        if line.startswith(("-", "+++")):
            continue
        if line.startswith(("+", " ")) and _WHO.match(line[1:]):
            line = line[1:]
        if match := _WHO.match(line):
            return match.group(1)
    return None


def _unified(device: str, old: str, new: str, old_label: str, new_label: str) -> tuple[str, int, int]:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{device}.cfg ({old_label})",
                                      f"b/{device}.cfg ({new_label})", lineterm=""))
    added = sum(1 for line in lines[2:] if line.startswith("+"))
    removed = sum(1 for line in lines[2:] if line.startswith("-"))
    return ("\n".join(lines) + "\n" if lines else ""), added, removed


def _author_identity(author: str) -> bytes:
    return (author if "<" in author else f"{author} <{author.replace(' ', '.')}@schoolops>").encode()


class ConfigRepo:
    """A git repository of device configurations at ``path`` (created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not (self.path / ".git").is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
            Repo.init(str(self.path), default_branch=b"main").close()

    # -- writing -----------------------------------------------------------------------------------
    def save(self, device: str, text: str, *, at: float, author: str, device_type: str | None = None) -> Change | None:
        """Store ``device``'s configuration; the Change, or None when nothing but volatile lines changed."""
        name = _file_name(device)
        clean = strip_volatile(text, device_type)
        who = who_changed(text, device_type) if device_type else who_changed(text, "cisco_ios")
        with self._lock, Repo(str(self.path)) as repo:
            head = _head(repo)
            old = _content(repo, head, name) if head is not None else None
            if old == clean:
                return None
            diff, added, removed = _unified(device, old or "", clean, head.decode()[:12] if head else "none", "new")
            summary = f"{device}: first backup ({added} lines)" if old is None else \
                f"{device}: configuration changed (+{added} -{removed})"
            message = summary + (f" by {who}" if who else "") + "\n"
            tmp = self.path / f".{name}.tmp"
            tmp.write_text(clean, encoding="utf-8")
            os.replace(tmp, self.path / name)
            worktree = repo.get_worktree()
            worktree.stage([name])
            identity = _author_identity(author)
            commit_id = worktree.commit(
                message=message.encode(), committer=identity, author=identity,
                commit_timestamp=at, commit_timezone=0, author_timestamp=at, author_timezone=0,
                no_verify=True, sign=False,
            )
        return Change(device, commit_id.decode(), diff, added, removed, at, who, old is None)

    # -- reading -----------------------------------------------------------------------------------
    def devices(self) -> list[str]:
        """The devices that have a stored configuration now."""
        with Repo(str(self.path)) as repo:
            head = _head(repo)
            if head is None:
                return []
            tree = _tree(repo, head)
            return sorted(entry.path.decode()[:-4] for entry in tree.iteritems() if entry.path.endswith(b".cfg"))

    def history(self, device: str) -> list[tuple[str, float, str]]:
        """(commit id, unix time, message) of each commit that changed ``device``, newest first."""
        name = _file_name(device)
        with Repo(str(self.path)) as repo:
            return [(cid.decode(), float(c.commit_time), c.message.decode().strip()) for cid, c in _changes(repo, name)]

    def show(self, device: str, commit: str | None = None) -> str:
        """``device``'s stored configuration at ``commit`` (a full or abbreviated id; default: now)."""
        name = _file_name(device)
        with Repo(str(self.path)) as repo:
            commit_id = self._resolve(repo, name, commit) if commit else _head(repo)
            text = _content(repo, commit_id, name) if commit_id is not None else None
        if text is None:
            raise BackupError(f"no stored configuration of {device}" + (f" at {commit}" if commit else ""))
        return text

    def diff(self, device: str, old_commit: str | None = None, new_commit: str | None = None) -> str:
        """Unified diff of ``device``'s configuration between two commits (default: its last change)."""
        name = _file_name(device)
        with Repo(str(self.path)) as repo:
            changes = [cid for cid, _ in _changes(repo, name)]
            if not changes:
                raise BackupError(f"no stored configuration of {device}")
            new = self._resolve(repo, name, new_commit) if new_commit else changes[0]
            if old_commit:
                old: bytes | None = self._resolve(repo, name, old_commit)
            else:  # the change before `new`
                older = [cid for cid in changes if _is_ancestor(repo, cid, new) and cid != new]
                old = older[0] if older else None
            old_text = (_content(repo, old, name) or "") if old is not None else ""
            new_text = _content(repo, new, name) or ""
        old_label = old.decode()[:12] if old is not None else "none"
        return _unified(device, old_text, new_text, old_label, new.decode()[:12])[0]

    @staticmethod
    def _resolve(repo: Repo, name: str, commit: str) -> bytes:
        text = commit.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{4,40}", text):
            raise BackupError(f"{commit!r} is not a commit id")
        if len(text) == 40:
            _tree(repo, text.encode())  # raises BackupError when it is no commit here
            return text.encode()
        matches = [cid for cid in _first_parent_chain(repo) if cid.decode().startswith(text)]
        if len(matches) != 1:
            raise BackupError(f"commit {commit} is {'ambiguous' if matches else 'unknown'} in {name}'s history")
        return matches[0]


def _file_name(device: str) -> str:
    if not _DEVICE_NAME.match(device) or ".." in device:
        raise ValueError(f"device: {device!r} cannot name a backup file (letters, digits, '.', '_', '-')")
    return f"{device}.cfg"


def _head(repo: Repo) -> bytes | None:
    try:
        return repo.head()
    except KeyError:  # no commit yet
        return None


def _tree(repo: Repo, commit_id: bytes) -> Tree:
    try:
        commit = repo[commit_id]
    except KeyError:
        raise BackupError(f"commit {commit_id.decode()} is unknown") from None
    if not isinstance(commit, Commit):
        raise BackupError(f"{commit_id.decode()} is not a commit")
    tree = repo[commit.tree]
    assert isinstance(tree, Tree)
    return tree


def _blob_id(repo: Repo, commit_id: bytes, name: str) -> bytes | None:
    tree = _tree(repo, commit_id)
    try:
        return tree[name.encode()][1]
    except KeyError:
        return None


def _content(repo: Repo, commit_id: bytes, name: str) -> str | None:
    blob_id = _blob_id(repo, commit_id, name)
    if blob_id is None:
        return None
    blob = repo[blob_id]
    assert isinstance(blob, Blob)
    return blob.data.decode("utf-8", errors="replace")


def _first_parent_chain(repo: Repo) -> list[bytes]:
    chain: list[bytes] = []
    current = _head(repo)
    while current is not None:
        chain.append(current)
        parents = repo[current].parents  # type: ignore[attr-defined]
        current = parents[0] if parents else None
    return chain


def _changes(repo: Repo, name: str) -> list[tuple[bytes, Commit]]:
    """Commits (newest first) whose tree holds a different ``name`` than their parent's."""
    out: list[tuple[bytes, Commit]] = []
    chain = _first_parent_chain(repo)
    for index, commit_id in enumerate(chain):
        parent = chain[index + 1] if index + 1 < len(chain) else None
        mine = _blob_id(repo, commit_id, name)
        before = _blob_id(repo, parent, name) if parent is not None else None
        if mine != before:
            commit = repo[commit_id]
            assert isinstance(commit, Commit)
            out.append((commit_id, commit))
    return out


def _is_ancestor(repo: Repo, candidate: bytes, of: bytes) -> bool:
    chain = _first_parent_chain(repo)
    return of in chain and candidate in chain and chain.index(candidate) >= chain.index(of)


async def back_up(
    device: str,
    address: str,
    config: CliConfig,
    password: str | None,
    enable: str | None,
    repo: ConfigRepo,
    *,
    semaphore: asyncio.Semaphore,
    at: float,
    author: str = "schoolops collector",
) -> Change | None:
    """Fetch ``device``'s configuration over the CLI and save it; the Change, if any. Raises CliError."""
    outputs = await run_commands(address, config, password, enable, ["config"], semaphore=semaphore)
    return await asyncio.to_thread(repo.save, device, outputs["config"].raw, at=at, author=author,
                                   device_type=config.device_type)
