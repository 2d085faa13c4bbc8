"""Pure: an item and what was observed in, normal / abnormal / not checked with the evidence out.

- :func:`judge` — a ``metric`` item against the values the asset's latest report gives for its
  measurement (``measurements(report).get(metric)``): one :class:`Finding` per key.
- :func:`judge_value` — an ``snmp_get`` value, an ``http`` status and body (or a single metric value).
- :func:`judge_output` — the exit status and output of an ``ssh`` program or a ``cli`` command.

Limits are inclusive: ``max: 85`` is normal at 85 and abnormal above it. "Not checked" means the
standard could not be applied (the report has no such section or key, no value was read); it is
never counted as normal. Evidence is short English text for the record (at most
:data:`EVIDENCE_LIMIT` characters), e.g. ``/var: 91.2 % (standard: at most 85)``.
Regular expressions are searched line by line (``^`` and ``$`` match at each line).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from collector.patrol.model import (
    CliMethod,
    HttpMethod,
    Item,
    MetricMethod,
    SnmpGetMethod,
    SshMethod,
)

Status = Literal["normal", "abnormal", "not_checked"]
EVIDENCE_LIMIT = 300

_UNITS = (("_percent", " %"), (".celsius", " °C"), ("_per_second", "/s"), ("_seconds", " s"),
          ("_bytes", " B"), ("days_left", " days"))


@dataclass(frozen=True)
class Finding:
    """One judged check: what within the asset (``key``), the value, the status and why."""

    key: str  # a mountpoint, an interface, a probe name...; "" for the asset (or the site) as a whole
    value: float | None
    status: Status
    evidence: str = ""  # what was seen, against the standard
    reason: str = ""  # why it was not checked


def not_checked(reason: str, *, key: str = "") -> Finding:
    return Finding(key=key, value=None, status="not_checked", reason=clip(reason))


def standard_text(method: MetricMethod | SnmpGetMethod) -> str:
    """The standard in words: "at most 85", "at least 14", "between 10 and 30", "equal to 1"."""
    if isinstance(method, SnmpGetMethod) and method.expect is not None:
        return f"equal to {method.expect!r}"
    if method.equals is not None:
        return f"equal to {_number(method.equals)}"
    if method.min is not None and method.max is not None:
        return f"between {_number(method.min)} and {_number(method.max)}"
    if method.max is not None:
        return f"at most {_number(method.max)}"
    return f"at least {_number(method.min or 0.0)}"


def within(method: MetricMethod | SnmpGetMethod, value: float) -> bool:
    """Whether ``value`` meets the method's numeric standard (limits inclusive)."""
    if method.equals is not None:
        return math.isclose(value, method.equals, rel_tol=0.0, abs_tol=1e-9)
    return (method.min is None or value >= method.min) and (method.max is None or value <= method.max)


def judge(item: Item, values: list[tuple[str, float]] | None) -> list[Finding]:
    """A metric item against ``values``, the (key, value) pairs of its measurement in the latest report.

    None or no pairs: the report has no such section (one not-checked finding). With ``key`` only
    that key is judged; without, every key reported is, in the order given.
    """
    method = item.method
    if not isinstance(method, MetricMethod):
        raise TypeError(f"item {item.id!r} is a {method.kind} item: use judge_value or judge_output")
    if not values:
        return [not_checked(f"the asset's report has no {method.metric}", key=method.key or "")]
    if method.key is not None:
        found = [value for key, value in values if key == method.key]
        if not found:
            return [not_checked(f"the asset's report has no {method.metric} for {method.key!r}", key=method.key)]
        return [_judge_number(method, method.key, found[0], _unit(method.metric))]
    return [_judge_number(method, key, value, _unit(method.metric)) for key, value in values]


def judge_value(method: MetricMethod | SnmpGetMethod | HttpMethod, value: float | str | None, *,
                body: str | None = None, error: str | None = None) -> Finding:
    """One value read for an item: an SNMP value (number or text), an HTTP status (with ``body``).

    ``value`` None with ``error`` (what went wrong): an HTTP service that did not answer is
    abnormal (answering is what is checked); an SNMP value that could not be read is not checked.
    """
    if isinstance(method, HttpMethod):
        return _judge_http(method, value, body, error)
    key = method.oid if isinstance(method, SnmpGetMethod) else (method.key or "")
    if value is None:
        return not_checked(f"no value was read{': ' + error if error else ''}", key=key)
    if isinstance(method, SnmpGetMethod) and method.expect is not None:
        text = _as_text(value)
        ok = text.strip() == method.expect.strip()
        evidence = f"{key}: {text!r} (standard: {standard_text(method)})"
        number = _as_number(value)
        return Finding(key=key, value=number, status="normal" if ok else "abnormal", evidence=clip(evidence))
    number = _as_number(value)
    if number is None:
        return not_checked(f"{_as_text(value)!r} is not a number, so it cannot be compared", key=key)
    unit = _unit(method.metric) if isinstance(method, MetricMethod) else ""
    return _judge_number(method, key, number, unit)


def judge_output(method: CliMethod | SshMethod, exit_status: int | None, output: str) -> Finding:
    """A command's result: an SSH program must exit 0; the output must match ``expect`` and not ``reject``.

    ``exit_status`` None for an SSH program: it did not finish (timed out, killed): abnormal.
    A CLI command has no exit status (pass None); only its output is judged.
    """
    value = float(exit_status) if exit_status is not None else None
    text = output.strip()
    if isinstance(method, SshMethod):
        if exit_status is None:
            return _abnormal(value, "the program did not finish", text)
        if exit_status != 0:
            return _abnormal(value, f"exit {exit_status}", text)
    if method.reject is not None:
        found = re.search(method.reject, text, re.MULTILINE)
        if found:
            return _abnormal(value, f"found {method.reject!r}", _line_of(text, found), tail=False)
    if method.expect is not None:
        found = re.search(method.expect, text, re.MULTILINE)
        if not found:
            return _abnormal(value, f"no match for {method.expect!r}", text)
        return Finding(key="", value=value, status="normal", evidence=_with(f"matched {method.expect!r}", _line_of(text, found)))
    return Finding(key="", value=value, status="normal", evidence=_with("exit 0", text, tail=False))


def _judge_number(method: MetricMethod | SnmpGetMethod, key: str, value: float, unit: str) -> Finding:
    if not math.isfinite(value):
        return not_checked(f"{key + ': ' if key else ''}the value is not a number", key=key)
    seen = f"{key + ': ' if key else ''}{_number(value)}{unit}"
    status: Status = "normal" if within(method, value) else "abnormal"
    return Finding(key=key, value=value, status=status, evidence=clip(f"{seen} (standard: {standard_text(method)})"))


def _judge_http(method: HttpMethod, value: float | str | None, body: str | None, error: str | None) -> Finding:
    status = _as_number(value) if value is not None else None
    if status is None:
        return Finding(key="", value=None, status="abnormal", evidence=clip(f"no answer{': ' + error if error else ''}"))
    seen = f"HTTP {_number(status)}"
    if not math.isclose(status, method.expect_status):
        return Finding(key="", value=status, status="abnormal", evidence=f"{seen} (standard: {method.expect_status})")
    if method.body_contains is not None:
        if body is None or method.body_contains not in body:
            evidence = f"{seen}, but the page does not contain {method.body_contains!r}"
            return Finding(key="", value=status, status="abnormal", evidence=clip(evidence))
        return Finding(key="", value=status, status="normal", evidence=clip(f"{seen}, contains {method.body_contains!r}"))
    return Finding(key="", value=status, status="normal", evidence=seen)


def _abnormal(value: float | None, what: str, text: str, *, tail: bool = True) -> Finding:
    return Finding(key="", value=value, status="abnormal", evidence=_with(what, text, tail=tail))


def _with(what: str, text: str, *, tail: bool = False) -> str:
    """``what: text``, the text cut to fit the limit (keeping its end when ``tail``: errors come last)."""
    if not text:
        return clip(what)
    room = max(EVIDENCE_LIMIT - len(what) - 2, 20)
    if len(text) > room:
        text = "…" + text[-(room - 1):] if tail else text[: room - 1] + "…"
    return clip(f"{what}: {text}")


def _line_of(text: str, match: re.Match[str]) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start: end if end >= 0 else len(text)].strip()


def clip(text: str) -> str:
    return text if len(text) <= EVIDENCE_LIMIT else text[: EVIDENCE_LIMIT - 1] + "…"


def _unit(metric: str) -> str:
    return next((unit for suffix, unit in _UNITS if metric.endswith(suffix)), "")


def _number(value: float) -> str:
    value = float(value)  # structs built in code may hold ints
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _as_number(value: float | str) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value.strip())
    except ValueError:
        return None


def _as_text(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
