"""Load a folder of rule files into one immutable :class:`RuleSet`; all or nothing.

Every ``*.yaml``/``*.yml`` file in the folder is read in name order and merged: rule ids are
unique across files, and an override may name a rule from any file. A bad file raises
:class:`~schoolops.ConfigError` naming the file, the line, the entry (``rules[3] (id
filesystem_usage)``) and the key; nothing is kept from a failed load, so a reloading collector
keeps its previous RuleSet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from collector.domain import AssetContext
from collector.rules.model import (
    OVERRIDABLE,
    RULE_KINDS,
    Override,
    Rule,
    RuleFile,
    Selector,
    attribute_name,
    check_rule,
    field_names,
    unknown_name,
)
from schoolops import ConfigError, conf
from schoolops.wire import Tier


@dataclass(frozen=True)
class AppliedOverride:
    """An override, validated against its rule: the typed attribute values it sets."""

    rule: str
    match: Selector | None
    changes: Mapping[str, Any]  # attribute name (``for_``) → value


_SELECTIONS_KEPT = 100_000  # asset label sets remembered per RuleSet (every asset's, unless labels churn)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    overrides: tuple[AppliedOverride, ...] = ()  # in file order, then listed order: later ones win
    files: tuple[str, ...] = ()
    # rules_for's answers by what selectors look at: every report asks, and the set never changes
    _selections: dict[tuple[str, str, str, str, Tier], tuple[Rule, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def rules_for(self, asset: AssetContext) -> list[Rule]:
        """The rules that apply to ``asset``: overrides applied, disabled and unmatched rules dropped."""
        key = (asset.name, asset.kind, asset.site, asset.role, asset.tier)
        selected = self._selections.get(key)
        if selected is None:
            if len(self._selections) >= _SELECTIONS_KEPT:
                self._selections.clear()
            selected = self._selections[key] = tuple(self._select(asset))
        return list(selected)

    def _select(self, asset: AssetContext) -> list[Rule]:
        selected: list[Rule] = []
        for rule in self.rules:
            changes: dict[str, Any] = {}
            for override in self.overrides:
                if override.rule == rule.id and (override.match is None or override.match.matches(asset)):
                    changes.update(override.changes)
            if changes:
                rule = msgspec.structs.replace(rule, **changes)
            if rule.applies_to(asset):
                selected.append(rule)
        return selected


def load_rules(directory: Path) -> RuleSet:
    """Read every rule file in ``directory``; raise ConfigError on the first problem, change nothing."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a folder of rule files")
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    rules: list[Rule] = []
    raw_rules: dict[str, tuple[dict[str, Any], str]] = {}  # id → (raw entry, where it is defined)
    overrides: list[tuple[_Where, dict[str, Any]]] = []
    for path in paths:
        text = conf.read_config_text(path)
        parsed = conf.load_text(text, RuleFile, source=str(path))
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        rule_nodes, override_nodes = _entries(root, "rules"), _entries(root, "overrides")
        for index, raw in enumerate(parsed.rules):
            where = _Where(path, f"rules[{index}]", _label("id", raw.get("id")), _nth(rule_nodes, index))
            rule = _build_rule(raw, where)
            if rule.id in raw_rules:
                raise where.error("id", f"duplicate rule id {rule.id!r}: already defined in {raw_rules[rule.id][1]}")
            raw_rules[rule.id] = (raw, f"{path} {where.item}")
            rules.append(rule)
        for index, raw in enumerate(parsed.overrides):
            label = _label("rule", raw.get("rule"))
            overrides.append((_Where(path, f"overrides[{index}]", label, _nth(override_nodes, index)), raw))
    applied = tuple(_apply_override(where, raw, raw_rules) for where, raw in overrides)
    return RuleSet(rules=tuple(rules), overrides=applied, files=tuple(str(p) for p in paths))


@dataclass(frozen=True)
class _Where:
    """An entry in a rule file, for error messages: ``FILE:LINE: rules[3] (id x): key: reason``."""

    path: Path
    item: str
    label: str
    node: yaml.Node | None = field(default=None, compare=False)

    def error(self, key: str, reason: str, *, line: int | None = None) -> ConfigError:
        line = line if line is not None else _line(self.node, key)
        head = f"{self.path}:{line}" if line else str(self.path)
        entry = f"{self.item} ({self.label})" if self.label else self.item
        return ConfigError(f"{head}: {entry}: {key}: {reason}")

    def convert(self, raw: dict[str, Any], type_: type[Any]) -> Any:
        """Validate ``raw`` as ``type_`` with schoolops.conf; re-word its error for this entry."""
        try:
            return conf.convert(raw, type_, source="", node=self.node)
        except conf.FieldError as exc:
            raise self.error(exc.key, exc.reason, line=exc.line) from None


def _build_rule(raw: dict[str, Any], where: _Where) -> Rule:
    kind = raw.get("kind")
    if kind is None:
        raise where.error("kind", f"missing: use one of {', '.join(RULE_KINDS)}")
    if not isinstance(kind, str) or kind not in RULE_KINDS:
        raise where.error("kind", unknown_name("rule kind", str(kind), list(RULE_KINDS)))
    allowed = field_names(RULE_KINDS[kind])
    for key in raw:
        if key not in allowed:
            raise where.error(str(key), f"not a field of a {kind} rule (those are: {', '.join(allowed)})")
    rule: Rule = where.convert(raw, RULE_KINDS[kind])
    problem = check_rule(rule)
    if problem:
        raise where.error(*problem)
    return rule


def _apply_override(where: _Where, raw: dict[str, Any], raw_rules: dict[str, tuple[dict[str, Any], str]]) -> AppliedOverride:
    override: Override = where.convert(raw, Override)
    if override.rule not in raw_rules:
        raise where.error("rule", unknown_name("rule", override.rule, sorted(raw_rules)))
    base = raw_rules[override.rule][0]
    kind = RULE_KINDS[base["kind"]]
    for key in override.set_:
        if key not in OVERRIDABLE:
            raise where.error(f"set.{key}", f"cannot be overridden; an override may set {', '.join(OVERRIDABLE)}")
        if key not in field_names(kind):
            raise where.error(f"set.{key}", f"rule {override.rule!r} is a {base['kind']} rule, which has no {key}")
    merged = {**base, **override.set_}
    # validate the rule as this override makes it; errors point at the override's `set`
    try:
        rule: Rule = conf.convert(merged, kind, source="", node=None)
    except ConfigError as exc:
        m = re.match(r"^: (.*?): (.*)\Z", str(exc), re.DOTALL)
        key, reason = (m.group(1), m.group(2)) if m else ("", str(exc))
        raise where.error(f"set.{key}", reason) from None
    problem = check_rule(rule)
    if problem:
        key, reason = problem
        root = key.split(".")[0]
        if root in override.set_:
            raise where.error(f"set.{key}", reason)
        raise where.error("set", f"the rule's {key} no longer fits: {reason}")
    changes = {attribute_name(kind, key): getattr(rule, attribute_name(kind, key)) for key in override.set_}
    return AppliedOverride(rule=override.rule, match=override.match, changes=changes)



def _label(word: str, value: object) -> str:
    return f"{word} {value}" if isinstance(value, str) and value else ""


def _entries(root: yaml.Node | None, name: str) -> list[yaml.Node | None]:
    """The item nodes of the top-level list ``name`` (for line numbers)."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if getattr(key, "value", None) == name and isinstance(value, yaml.SequenceNode):
                return list(value.value)
    return []


def _nth(nodes: list[yaml.Node | None], index: int) -> yaml.Node | None:
    return nodes[index] if index < len(nodes) else None


def _line(node: yaml.Node | None, key: str) -> int | None:
    """The line of ``key`` (dotted, e.g. ``set.levels``) in a mapping node, or of the deepest part found."""
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        found = next(((k, v) for k, v in node.value if str(getattr(k, "value", None)) == part), None)
        if found is None:
            break
        line, node = int(found[0].start_mark.line) + 1, found[1]
    return line
