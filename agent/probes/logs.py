"""Log watching: lines appended to a log since the last collect that match a watch's patterns.

Per watch the probe remembers, in its :class:`ProbeState` section, which file it reads (device,
inode and a checksum of its first bytes) and how far (the offset after the last complete line
taken), so a restart neither repeats nor skips lines. Rotation is followed:

* **rename** (``mv auth.log auth.log.1``, then a new ``auth.log``): the old file is finished
  first, through the handle kept open since the previous collect (after a restart: the sibling
  whose name starts with the log's name and that has the remembered inode), and kept open until
  it stops growing for a whole interval, for daemons that reopen their log late; then the new
  file is read from its start;
* **copytruncate** (the file shrinks below the offset, or no longer starts as it did): reading
  restarts at 0. The checksum also tells a new file that reused a deleted one's inode number.

The first time a watch is seen the probe starts at the end of the file, like ``tail -f``.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from typing import Any, BinaryIO, Self

from agent.config import LogWatchConfig, ProbesConfig
from agent.probes import ProbeState
from schoolops import wire

MAX_BYTES_PER_COLLECT = 4 * 1024 * 1024  # per watch: a huge backlog is worked off over several collects
MAX_LINE = 4096  # wire.Text
MAX_PATTERN = 512  # wire.LogLine.pattern
MAX_PATH = 1024
HEAD_BYTES = 256  # a file's first bytes, remembered as a checksum to recognise it besides its inode
IDENTITY = ("device", "inode", "offset", "head_len", "head_crc")


class LogWatchProbe:
    name = "logs"

    def __init__(
        self, watches: list[LogWatchConfig], memory: dict[str, Any], max_bytes: int = MAX_BYTES_PER_COLLECT
    ) -> None:
        self.watches = watches
        self.patterns = {w.name: [(p, re.compile(p)) for p in w.patterns] for w in watches}
        self.memory = memory  # this probe's ProbeState section: {watch name: record}, saved by the agent
        self.max_bytes = max_bytes
        self._handles: dict[tuple[str, str], BinaryIO] = {}  # (watch, "current" | "rotated") -> open file
        for name in [n for n in memory if n not in self.patterns]:
            del memory[name]

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls(list(config.logs), state.section(cls.name)) if config.logs else None

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def collect(self) -> list[wire.LogWatch]:
        return [self._watch(watch) for watch in self.watches]

    def _watch(self, watch: LogWatchConfig) -> wire.LogWatch:
        record = self.memory.get(watch.name)
        error = None
        try:
            st: os.stat_result | None = os.stat(watch.path)
        except OSError as exc:
            st = None
            error = f"{watch.path} does not exist" if isinstance(exc, FileNotFoundError) else _describe(watch.path, exc)
        if st is not None and not stat.S_ISREG(st.st_mode):
            return self._match(watch, record or {"matches_total": 0}, [], f"{watch.path} is not a regular file")
        if record is None or record.get("path") != watch.path:  # first sight: report from now on
            record = self.memory[watch.name] = {
                "path": watch.path,
                "device": st.st_dev if st else 0,
                "inode": st.st_ino if st else 0,
                "offset": st.st_size if st else 0,
                "matches_total": record.get("matches_total", 0) if record else 0,
            }
        try:
            raw = self._read_new_lines(watch, record, st)
        except OSError as exc:
            raw = []
            error = _describe(watch.path, exc)
        return self._match(watch, record, raw, error)

    def _read_new_lines(self, watch: LogWatchConfig, record: dict[str, Any], st: os.stat_result | None) -> list[bytes]:
        name, path = watch.name, watch.path
        budget = self.max_bytes
        lines: list[bytes] = []
        current = self._handle(name, "current", path, record)
        if st is not None and (st.st_dev, st.st_ino) != (record["device"], record["inode"]):
            # Rotated (or the log appeared): the file we were reading becomes the rotated one.
            if current is not None:
                if "rotated" in record:  # rotated twice within one interval: finish the older now
                    budget -= self._drain(name, path, record, lines, budget, finish=True)
                    if "rotated" in record:  # more than the budget left in it: give the rest up
                        self._handles.pop((name, "rotated")).close()
                record["rotated"] = {key: record[key] for key in IDENTITY if key in record}
                self._handles[(name, "rotated")] = self._handles.pop((name, "current"))
            record.update(device=st.st_dev, inode=st.st_ino, offset=0)
            _forget_head(record)
            current = self._handle(name, "current", path, record)
        if "rotated" in record:
            budget -= self._drain(name, path, record, lines, budget, finish=False)
        if current is not None and budget > 0:
            if os.fstat(current.fileno()).st_size < record["offset"] or not _same_head(current, record):
                # Truncated in place (copytruncate), or, after a restart, a new file that got the old inode.
                record["offset"] = 0
                _forget_head(record)
            _, record["offset"] = _read_lines(current, record["offset"], budget, lines, final=False)
            _remember_head(current, record)
        return lines

    def _drain(
        self, name: str, path: str, record: dict[str, Any], lines: list[bytes], budget: int, *, finish: bool
    ) -> int:
        """Read on in the rotated file; close it once it has not grown for a whole interval. Returns bytes taken."""
        rotated = record["rotated"]
        handle = self._handle(name, "rotated", path, rotated)
        if handle is None or not _same_head(handle, rotated):  # gone (deleted while the agent was down)
            if handle is not None:
                self._handles.pop((name, "rotated")).close()
            del record["rotated"]
            return 0
        size = os.fstat(handle.fileno()).st_size
        finish = finish or size == rotated.get("size")  # "size" is absent in the collect that found the rotation
        taken, rotated["offset"] = _read_lines(handle, rotated["offset"], budget, lines, final=finish)
        rotated["size"] = size
        if finish and rotated["offset"] >= size:
            self._handles.pop((name, "rotated")).close()
            del record["rotated"]
        return taken

    def _handle(self, name: str, role: str, path: str, identity: dict[str, Any]) -> BinaryIO | None:
        """The open file with the identity's device and inode: kept from before, or found at ``path`` or a sibling."""
        key = (name, role)
        handle = self._handles.get(key)
        if handle is not None:
            st = os.fstat(handle.fileno())
            if (st.st_dev, st.st_ino) == (identity["device"], identity["inode"]):
                return handle
            self._handles.pop(key).close()
        if not identity["inode"]:
            return None
        handle = _find(path, identity["device"], identity["inode"])
        if handle is not None:
            self._handles[key] = handle
        return handle

    def _match(
        self, watch: LogWatchConfig, record: dict[str, Any], raw: list[bytes], error: str | None
    ) -> wire.LogWatch:
        reported: list[wire.LogLine] = []
        suppressed = 0
        for data in raw:
            text = data.decode("utf-8", errors="replace").rstrip("\r")
            source = next((source for source, regex in self.patterns[watch.name] if regex.search(text)), None)
            if source is None:
                continue
            record["matches_total"] += 1
            if len(reported) < watch.max_lines:
                reported.append(wire.LogLine(pattern=source[:MAX_PATTERN], line=text[:MAX_LINE]))
            else:
                suppressed += 1
        return wire.LogWatch(
            name=watch.name,
            path=watch.path[:MAX_PATH],
            matches_total=record["matches_total"],
            lines=reported,
            suppressed=suppressed,
            error=error[:4096] if error else None,
        )


def _read_lines(handle: BinaryIO, offset: int, budget: int, lines: list[bytes], *, final: bool) -> tuple[int, int]:
    """Append the complete lines after ``offset`` (at most ``budget`` bytes) to ``lines``.

    A partial last line waits for its newline unless ``final`` (the file will not grow any more), or
    unless it alone fills the budget (then it is taken in pieces). Returns (bytes taken, new offset).
    """
    if budget <= 0:
        return 0, offset
    handle.seek(offset)
    data = handle.read(budget)
    whole = final or (len(data) == budget and b"\n" not in data)
    end = len(data) if whole else data.rfind(b"\n") + 1
    if end:
        chunk = data[:end]
        lines.extend(chunk[:-1].split(b"\n") if chunk.endswith(b"\n") else chunk.split(b"\n"))
    return end, offset + end


def _same_head(handle: BinaryIO, identity: dict[str, Any]) -> bool:
    """Whether the file still starts as it did: inode numbers are reused, and copytruncate rewrites in place."""
    length = identity.get("head_len", 0)
    if not length:
        return True
    head = os.pread(handle.fileno(), length, 0)
    return len(head) == length and zlib.crc32(head) == int(identity["head_crc"])


def _remember_head(handle: BinaryIO, identity: dict[str, Any]) -> None:
    if identity.get("head_len", 0) < HEAD_BYTES:  # a young file: its head is still growing
        head = os.pread(handle.fileno(), HEAD_BYTES, 0)
        identity["head_len"], identity["head_crc"] = len(head), zlib.crc32(head)


def _forget_head(identity: dict[str, Any]) -> None:
    identity.pop("head_len", None)
    identity.pop("head_crc", None)


def _find(path: str, device: int, inode: int) -> BinaryIO | None:
    """Open the file with this device and inode: ``path`` itself or a sibling named like it (``auth.log.1``)."""
    directory, base = os.path.split(path)
    candidates = [path]
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    candidates += sorted(os.path.join(directory, n) for n in names if n.startswith(base) and n != base)
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (device, inode):
            continue
        try:
            handle = open(candidate, "rb")  # noqa: SIM115 - kept open across collects on purpose
        except OSError:
            if candidate == path:  # the log itself is unreadable: say so
                raise
            continue
        st = os.fstat(handle.fileno())
        if (st.st_dev, st.st_ino) == (device, inode):
            return handle
        handle.close()
    return None


def _describe(path: str, exc: OSError) -> str:
    return f"{path} cannot be read: {exc.strerror or exc}"
