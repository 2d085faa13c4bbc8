"""File freshness: did last night's backup land? Is the attendance export still being written?"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable
from typing import Self

from agent.config import FileWatchConfig, ProbesConfig
from agent.probes import ProbeState
from schoolops import wire

MAX_PATH = 1024  # wire.FileFreshness.path and newest_file


class FileFreshnessProbe:
    """For a directory: its newest regular file matching the watch's glob (not recursive); else the file itself."""

    name = "files"

    def __init__(self, watches: list[FileWatchConfig], clock: Callable[[], float] = time.time) -> None:
        self.watches = watches
        self.clock = clock

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls(list(config.files)) if config.files else None

    def collect(self) -> list[wire.FileFreshness]:
        now = self.clock()
        return [self._check(watch, now) for watch in self.watches]

    def _check(self, watch: FileWatchConfig, now: float) -> wire.FileFreshness:
        max_age = float(watch.max_age)
        try:
            count, newest = _newest(watch.path, watch.pattern)
        except OSError as exc:
            reason = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read: {exc.strerror}"
            return wire.FileFreshness(
                name=watch.name,
                path=watch.path[:MAX_PATH],
                max_age_seconds=max_age,
                count=0,
                fresh=False,
                error=f"{watch.path} {reason}"[:4096],
            )
        if newest is None:
            return wire.FileFreshness(
                name=watch.name, path=watch.path[:MAX_PATH], max_age_seconds=max_age, count=0, fresh=False
            )
        path, mtime = newest
        age = max(0.0, now - mtime)  # a clock step or a copied timestamp can put mtime in the future
        return wire.FileFreshness(
            name=watch.name,
            path=watch.path[:MAX_PATH],
            max_age_seconds=max_age,
            count=count,
            fresh=age <= max_age,
            newest_age_seconds=age,
            newest_file=path[:MAX_PATH],
        )


def _newest(path: str, pattern: str) -> tuple[int, tuple[str, float] | None]:
    """How many files count at ``path`` and the newest one with its mtime; OSError if ``path`` cannot be read."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return 1, (path, st.st_mtime)
    count = 0
    newest: tuple[str, float] | None = None
    with os.scandir(path) as entries:
        for entry in entries:
            if not fnmatch.fnmatchcase(entry.name, pattern):
                continue
            try:
                if not entry.is_file():  # follows symlinks: a link to a backup counts as the backup
                    continue
                mtime = entry.stat().st_mtime
            except OSError:  # removed while we looked, or a dangling link
                continue
            count += 1
            if newest is None or mtime > newest[1]:
                newest = (entry.path, mtime)
    return count, newest
