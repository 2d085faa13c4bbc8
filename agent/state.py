"""What the agent remembers across restarts: its stream id, last sequence number, counters, probe state.

Saved atomically (write, fsync, rename) after every report, so a crash or power cut leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import binascii
import os
from pathlib import Path
from typing import Any

import msgspec

from agent import AgentError


class AgentState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.stream = binascii.hexlify(os.urandom(16)).decode()
        self.last_seq = 0
        self.dropped_total = 0
        self.replayed_total = 0
        self.replay_floor = 0  # reports with seq <= this waited in the spool after a failed send
        self.probes: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> AgentState:
        state = cls(path)
        try:
            raw = msgspec.json.decode(path.read_bytes())
            state.stream = str(raw["stream"])
            state.last_seq = int(raw["last_seq"])
            state.dropped_total = int(raw.get("dropped_total", 0))
            state.replayed_total = int(raw.get("replayed_total", 0))
            state.replay_floor = int(raw.get("replay_floor", 0))
            state.probes = dict(raw.get("probes", {}))
        except FileNotFoundError:
            return state
        except (OSError, msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AgentError(
                f"{path}: agent state is unreadable ({exc.__class__.__name__}: {exc}); "
                "move it away to start a new stream"
            ) from None
        return state

    def next_seq(self, at_least: int = 0) -> int:
        self.last_seq = max(self.last_seq, at_least) + 1
        return self.last_seq

    def save(self) -> None:
        data = {
            "stream": self.stream,
            "last_seq": self.last_seq,
            "dropped_total": self.dropped_total,
            "replayed_total": self.replayed_total,
            "replay_floor": self.replay_floor,
            "probes": self.probes,
        }
        write_atomic(self.path, msgspec.json.encode(data))


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
