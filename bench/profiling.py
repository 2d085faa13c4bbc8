"""``--profile DIR``: sample the measured process with py-spy while a figure loads it.

Writes ``DIR/NAME.txt`` (the functions with the most samples, on their own and with what they call)
and ``DIR/NAME.collapsed`` (folded stacks, for any flame-graph tool). Off by default; without py-spy
the figure runs unprofiled and says so once.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Profiler:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.binary = shutil.which("py-spy") or (str(Path(sys.executable).with_name("py-spy"))
                                                  if Path(sys.executable).with_name("py-spy").exists() else None)
        self.done: set[str] = set()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            if self.binary is None:
                print("profiling off: py-spy is not installed (pip install -e '.[bench]')", file=sys.stderr)

    @contextlib.contextmanager
    def attach(self, target: Any, name: str, seconds: float) -> Iterator[None]:
        """Profile ``target`` (anything with ``.process.pid`` or ``.pid``) once per ``name``."""
        if self.directory is None or self.binary is None or name in self.done:
            yield
            return
        self.done.add(name)
        pid = target.process.pid if hasattr(target, "process") else target.pid
        out = self.directory / f"{name}.collapsed"
        spy = subprocess.Popen([self.binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                                "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.terminate()
                spy.wait(timeout=10)
            if out.exists():
                (self.directory / f"{name}.txt").write_text(summarise(out.read_text(errors="replace")))


def summarise(folded: str, top: int = 40) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "", "on their own:"]
    lines += [f"{100 * n / samples:6.1f} %  {frame}" for frame, n in own.most_common(top)] if samples else []
    lines += ["", "with what they call:"]
    lines += [f"{100 * n / samples:6.1f} %  {frame}" for frame, n in total.most_common(top)] if samples else []
    return "\n".join(lines) + "\n"
