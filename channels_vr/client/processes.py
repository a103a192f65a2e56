"""Chromium's processes as Linux shows them (/proc): which one is the browser, and its memory."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            found.extend(int(child) for child in children)
    except OSError:
        pass
    return found


def tree_rss(pid: int) -> int:
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        stack.extend(children(current))
    return total


def browser_pid(executable: str, _launch: int) -> int | None:
    """The newest Chromium started by this process's Playwright driver (for the memory figure)."""
    me = os.getpid()
    candidates = []
    for child in descendants(me):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and b"chrom" in cmdline[0] and not any(part.startswith(b"--type=") for part in cmdline):
            candidates.append(child)
    return max(candidates) if candidates else None


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for child in children(current):
            found.append(child)
            stack.append(child)
    return found
