"""The three-way merge of a save that lost a race (412): top-level keys only one side
changed are kept from that side; a key both sides changed, differently, is a conflict."""

from __future__ import annotations

from typing import Any, Mapping

_ABSENT = object()


class Conflict(Exception):
    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__("changed by another request too: " + ", ".join(sorted(keys)))


def merge(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict:
    """`base` is what this request loaded, `ours` what it would save, `theirs` what the
    service holds now. A removed key counts as a change to "absent"."""
    merged: dict[str, Any] = {}
    conflicts = []
    for key in {**base, **ours, **theirs}:
        was = base.get(key, _ABSENT)
        mine = ours.get(key, _ABSENT)
        other = theirs.get(key, _ABSENT)
        if mine == was:
            value = other
        elif other == was or other == mine:
            value = mine
        else:
            conflicts.append(key)
            continue
        if value is not _ABSENT:
            merged[key] = value
    if conflicts:
        raise Conflict(conflicts)
    return merged
