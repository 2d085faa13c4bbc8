"""Load the patrol checklists in a folder into ``{name: Checklist}``; all or nothing.

Every ``*.yaml``/``*.yml`` file directly in the folder (not its subfolders) is read in name order.
A bad file raises :class:`~schoolops.ConfigError` naming the file, the line, the section and item
(``sections[1] (id servers).items[2] (id disk)``) and the key; nothing is kept from a failed load.
Checklist names are unique across files, section and item ids within a checklist. Given the names
of the runbooks that exist, every ``on_abnormal.runbook`` must be one of them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.patrol.model import (
    METHODS,
    Checklist,
    ChecklistFile,
    Item,
    RawSection,
    Section,
    check_item,
)
from schoolops import ConfigError, conf


def load_checklists(directory: Path, runbooks: Collection[str] | None = None) -> dict[str, Checklist]:
    """Read every checklist file in ``directory``; raise ConfigError on the first problem.

    ``runbooks``: the runbook names an item's ``on_abnormal.runbook`` may use (None: not checked).
    """
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a folder of patrol checklists")
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    checklists: dict[str, Checklist] = {}
    for path in paths:
        checklist, top = _load_file(path, runbooks)
        if checklist.name in checklists:
            first = checklists[checklist.name].source
            raise top.error("name", f"duplicate checklist name {checklist.name!r}: already defined in {first}")
        checklists[checklist.name] = checklist
    return checklists


def _load_file(path: Path, runbooks: Collection[str] | None) -> tuple[Checklist, _Where]:
    text = conf.read_config_text(path)
    parsed = conf.load_text(text, ChecklistFile, source=str(path))
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    top = _Where(path, "", root)
    sections: list[Section] = []
    section_ids: dict[str, str] = {}  # section id → where it is first defined
    item_ids: dict[str, str] = {}  # item id → where it is first defined
    for s_index, raw_section in enumerate(parsed.sections):
        s_node = conf.node_at(root, f"sections[{s_index}]")
        s_entry = f"sections[{s_index}]{_label(raw_section)}"
        s_where = _Where(path, s_entry, s_node)
        raw: RawSection = s_where.convert(raw_section, RawSection)
        if raw.id in section_ids:
            raise s_where.error("id", f"section id {raw.id!r} repeated: already {section_ids[raw.id]}")
        section_ids[raw.id] = s_entry
        items: list[Item] = []
        for i_index, raw_item in enumerate(raw.items):
            i_entry = f"{s_entry}.items[{i_index}]{_label(raw_item)}"
            i_where = _Where(path, i_entry, conf.node_at(s_node, f"items[{i_index}]"))
            item = _build_item(raw_item, i_where, runbooks)
            if item.id in item_ids:
                raise i_where.error("id", f"item id {item.id!r} repeated: already {item_ids[item.id]}")
            item_ids[item.id] = i_entry
            items.append(item)
        sections.append(Section(id=raw.id, title=raw.title, items=tuple(items)))
    checklist = Checklist(
        name=parsed.name,
        title=parsed.title,
        sections=tuple(sections),
        schedule=parsed.schedule,
        timezone=parsed.timezone,
        source=str(path),
    )
    return checklist, top


def _build_item(raw: dict[str, Any], where: _Where, runbooks: Collection[str] | None) -> Item:
    method = raw.get("method")
    if isinstance(method, dict) and method.get("kind") not in METHODS:
        what = f"unknown method kind {method['kind']!r}" if "kind" in method else "say how the item is checked"
        raise where.error("method.kind", f"{what}: use one of {', '.join(METHODS)}")
    item: Item = where.convert(raw, Item)
    problem = check_item(item)
    if problem:
        raise where.error(*problem)
    runbook = item.on_abnormal.runbook if item.on_abnormal is not None else None
    if runbooks is not None and runbook is not None and runbook not in runbooks:
        known = ", ".join(sorted(runbooks)) or "(none)"
        raise where.error("on_abnormal.runbook", f"no runbook named {runbook!r}; known: {known}")
    return item


def _label(raw: object) -> str:
    """`` (id servers)`` when the raw entry has a usable id, else nothing."""
    ident = raw.get("id") if isinstance(raw, dict) else None
    return f" (id {ident})" if isinstance(ident, str) and ident else ""


@dataclass(frozen=True)
class _Where:
    """A place in a checklist file, for errors: ``FILE:LINE: sections[1] (id servers).items[2] (id disk): key: reason``."""

    path: Path
    entry: str  # "sections[1] (id servers).items[2] (id disk)", or "" for the checklist's own keys
    node: yaml.Node | None = field(default=None, compare=False)

    def error(self, key: str, reason: str, *, line: int | None = None) -> ConfigError:
        line = line if line is not None else conf.line_of(self.node, key)
        head = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{head}: {self.entry + ': ' if self.entry else ''}{key}: {reason}")

    def convert(self, raw: dict[str, Any], type_: type[Any]) -> Any:
        """Validate ``raw`` (this entry) as ``type_``; re-word the error to name the entry."""
        try:
            return conf.convert(raw, type_, source="", node=self.node)
        except conf.FieldError as exc:
            key, reason = exc.key if exc.key != "(top level)" else "(entry)", exc.reason
            if key.endswith("[...]") and reason.endswith("got `null`"):
                reason += " (in {en: ..., zh-CN: ...} a comma starts a new key: put a text with commas in quotes)"
            raise self.error(key, reason, line=exc.line) from None
