"""Asset dependencies, as pure functions over a parents map: depth, ancestors, the parent that is down."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Parents = Mapping[str, tuple[str, ...]]


def depth(parents: Parents, name: str) -> int:
    """0 for an asset without parents; parents are evaluated before their children."""
    seen: set[str] = set()

    def walk(node: str) -> int:
        if node in seen or not parents.get(node):
            return 0
        seen.add(node)
        return 1 + max(walk(parent) for parent in parents[node])

    return walk(name)


def ancestors(parents: Parents, name: str) -> set[str]:
    out: set[str] = set()
    pending = list(parents.get(name, ()))
    while pending:
        parent = pending.pop()
        if parent not in out:
            out.add(parent)
            pending.extend(parents.get(parent, ()))
    return out


def nearest_down(parents: Parents, name: str, down_assets: Iterable[str]) -> str | None:
    """The closest ancestor (breadth first) that is down, if any."""
    down = set(down_assets)
    pending, seen = list(parents.get(name, ())), set()
    while pending:
        parent = pending.pop(0)
        if parent in seen:
            continue
        seen.add(parent)
        if parent in down:
            return parent
        pending.extend(parents.get(parent, ()))
    return None
