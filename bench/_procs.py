"""A process and its live descendants, read from /proc (for the benches' memory and CPU figures)."""

from __future__ import annotations

import os


def family(root: int) -> dict[int, list[str]]:
    """pid -> the fields of /proc/pid/stat after the command name, for `root` and its descendants."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stats[int(entry)] = fh.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
    members, grew = {root}, True
    while grew:
        more = {p for p, fields in stats.items() if int(fields[1]) in members} - members
        members |= more
        grew = bool(more)
    return {p: stats[p] for p in members if p in stats}
