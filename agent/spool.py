"""The agent's outbox on disk: every report is written here first and removed once delivered.

One file per report, named by its sequence number, so order is the file names' order and an agent
restart finds everything it had not delivered. Bounded by total size and by age: when a bound is
hit the oldest reports go first, and the number dropped is counted (and reported).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from agent.state import write_atomic

_SUFFIX = ".json"


class Spool:
    def __init__(
        self, directory: Path, *, max_bytes: int, max_age: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in directory.glob(".*.tmp"):  # a write interrupted by a crash
            leftover.unlink(missing_ok=True)

    def _entries(self) -> list[tuple[int, Path, int, float]]:
        entries = []
        for entry in os.scandir(self.directory):
            name = entry.name
            if not name.endswith(_SUFFIX) or not name[: -len(_SUFFIX)].isdigit():
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((int(name[: -len(_SUFFIX)]), Path(entry.path), st.st_size, st.st_mtime))
        entries.sort()
        return entries

    def last_seq(self) -> int:
        entries = self._entries()
        return entries[-1][0] if entries else 0

    def put(self, seq: int, body: bytes) -> int:
        """Store a report; return how many older reports were dropped to stay within the bounds."""
        write_atomic(self.directory / f"{seq:020d}{_SUFFIX}", body)
        return self.enforce_bounds()

    def enforce_bounds(self) -> int:
        entries = self._entries()
        dropped = 0
        oldest_allowed = self.clock() - self.max_age
        total = sum(size for _, _, size, _ in entries)
        # oldest first, and never the newest report: it is the freshest view of the host
        for _seq, path, size, mtime in entries[:-1]:
            if mtime < oldest_allowed or total > self.max_bytes:
                path.unlink(missing_ok=True)
                total -= size
                dropped += 1
        return dropped

    def oldest(self) -> tuple[int, bytes] | None:
        for seq, path, _, _ in self._entries():
            try:
                return seq, path.read_bytes()
            except FileNotFoundError:
                continue
        return None

    def remove(self, seq: int) -> None:
        (self.directory / f"{seq:020d}{_SUFFIX}").unlink(missing_ok=True)

    def stats(self) -> tuple[int, int]:
        """(pending reports, pending bytes)"""
        entries = self._entries()
        return len(entries), sum(size for _, _, size, _ in entries)
