"""Load a YAML file into a typed msgspec struct; errors name the file, the line and the key.

YAML is parsed once into a node tree (which keeps line marks) and once into plain data; the data
is validated by msgspec, and the path in a validation error (``$.probes.logs[0].path``) is walked
back through the node tree to the line a person has to fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from schoolops import ConfigError
from schoolops.units import dec_hook

T = TypeVar("T")

_PATH_IN_ERROR = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_LEADING_FIELD = re.compile(r"^([a-z_][a-z0-9_]*)\b")


def read_config_text(path: str | Path) -> str:
    """A config file's text, or a :class:`ConfigError` that names it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def load_file(path: str | Path, type_: type[T]) -> T:
    """Read and validate ``path`` as ``type_``; raise :class:`ConfigError` naming file, line, key."""
    return load_text(read_config_text(path), type_, source=str(path))


def load_text(text: str, type_: type[T], *, source: str = "<config>") -> T:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
    check_duplicate_keys(node, source)
    if data is None:
        data = {}
    return convert(data, type_, source=source, node=node)


class FieldError(ConfigError):
    """A value that does not fit, with where it is: ``line`` (None if unknown), ``key`` (dotted, or
    "(top level)") and ``reason`` — so that a loader can say it again for its own entry."""

    def __init__(self, message: str, *, line: int | None, key: str, reason: str) -> None:
        super().__init__(message)
        self.line, self.key, self.reason = line, key, reason


def convert(data: Any, type_: type[T], *, source: str, node: yaml.Node | None = None) -> T:
    """Validate already-parsed data; ``node`` (if given) maps error paths to line numbers."""
    try:
        return msgspec.convert(data, type_, dec_hook=dec_hook, str_keys=True)
    except msgspec.ValidationError as exc:
        line, key, reason = locate_error(exc, node)
        raise FieldError(_message(source, line, key, reason), line=line, key=key, reason=reason) from None


def describe_error(exc: msgspec.ValidationError, *, source: str, node: yaml.Node | None) -> str:
    return _message(source, *locate_error(exc, node))


def _message(source: str, line: int | None, key: str, reason: str) -> str:
    where = f"{source}:{line}" if line else source
    return f"{where}: {key}: {reason}"


def locate_error(exc: msgspec.ValidationError, node: yaml.Node | None) -> tuple[int | None, str, str]:
    """(line, key, reason) of a validation error, the line found through ``node``."""
    m = _PATH_IN_ERROR.match(str(exc))
    assert m is not None  # the pattern matches any string
    reason, path = m.group("reason"), m.group("path") or "$"
    key = _key_of(path, reason)
    unknown = re.search(r"unknown field `([^`]+)`", reason)
    if unknown:
        path = f"{path}.{unknown.group(1)}"
    elif (named := _LEADING_FIELD.match(reason)) and _child(_node_at(node, path)[0], named.group(1)) is not None:
        # a check across fields ("argv[0] must be ...") points at the field it names first
        field = named.group(1)
        path, key = f"{path}.{field}", f"{key}.{field}" if key != "(top level)" else field
        reason = reason.removeprefix(f"{field}: ")
    return _node_at(node, path)[1], key, reason


def _key_of(path: str, reason: str) -> str:
    key = path[2:] if path.startswith("$.") else path[1:]
    # msgspec names the offending field in the reason for missing/unknown fields
    field = re.search(r"field `([^`]+)`", reason)
    if field:
        key = f"{key}.{field.group(1)}" if key else field.group(1)
    return key or "(top level)"


def _child(node: yaml.Node | None, name: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == name), None)
    return None


def _node_at(node: yaml.Node | None, path: str) -> tuple[yaml.Node | None, int | None]:
    """The deepest node on ``path`` that exists, and the line to show: a key's own line for a key."""
    current, line = node, (node.start_mark.line + 1 if node is not None else None)
    for name, index in _PATH_STEP.findall(path[1:]):
        if name and isinstance(current, yaml.MappingNode):
            found = next(((k, v) for k, v in current.value if getattr(k, "value", None) == name), None)
            if found is None:
                break
            current, line = found[1], found[0].start_mark.line + 1
        elif index and isinstance(current, yaml.SequenceNode) and int(index) < len(current.value):
            current = current.value[int(index)]
            line = current.start_mark.line + 1
        else:
            break
    return current, line


def check_duplicate_keys(node: yaml.Node | None, source: str, path: str = "") -> None:
    """YAML lets a later key silently replace an earlier one; in a config that hides mistakes."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value in node.value:
            name = getattr(key_node, "value", None)
            here = f"{path}.{name}" if path else str(name)
            if name in seen:
                raise ConfigError(
                    f"{source}:{key_node.start_mark.line + 1}: {here}: duplicate key (first at line {seen[name]})"
                )
            seen[name] = key_node.start_mark.line + 1
            check_duplicate_keys(value, source, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            check_duplicate_keys(item, source, f"{path}[{i}]")


_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def node_at(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The node at dotted ``key`` (``steps[2].params``), or None (for loaders naming a file's lines)."""
    return _walk(node, key)[0]


def line_of(node: yaml.Node | None, key: str) -> int | None:
    """The line of ``key`` in ``node``, or of the deepest part of it that exists."""
    return _walk(node, key)[1]


def _walk(node: yaml.Node | None, key: str) -> tuple[yaml.Node | None, int | None]:
    if node is None:
        return None, None
    current: yaml.Node | None = node
    line = node.start_mark.line + 1
    for name, index in _KEY_PART.findall(key):
        if name and isinstance(current, yaml.MappingNode):
            found = next(((k, v) for k, v in current.value if str(getattr(k, "value", None)) == name), None)
            if found is None:
                return None, line
            current, line = found[1], found[0].start_mark.line + 1
        elif index and isinstance(current, yaml.SequenceNode) and int(index) < len(current.value):
            current = current.value[int(index)]
            line = current.start_mark.line + 1
        else:
            return None, line
    return current, line
