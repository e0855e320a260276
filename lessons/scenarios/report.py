"""The import and export reports: one line per item, naming the file, the line and what happened.

Kinds:

- ``mapped``: carried over as it is meant (a step's verify script became its check).
- ``rewritten``: carried over, changed for the classroom (``/root`` became ``$HOME``).
- ``reported``: not carried over, or only in part; the reason says what the learner loses.
- ``cannot-run``: carried over, but it cannot work here (root-only commands, other nodes,
  cluster-scoped objects); the step's text is marked too.
- ``warning``: about the scenario as a whole (no licence found).
"""

from __future__ import annotations

import dataclasses

KINDS = ("mapped", "rewritten", "reported", "cannot-run", "warning")


@dataclasses.dataclass(frozen=True)
class Item:
    file: str
    line: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.reason}"


class Report:
    """Items in the order they were found."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def add(self, file: str, line: int, kind: str, reason: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown report kind {kind!r}")
        self.items.append(Item(file, max(int(line or 1), 1), kind, reason))

    def of_kind(self, kind: str) -> list[Item]:
        return [item for item in self.items if item.kind == kind]

    def count(self, kind: str) -> int:
        return len(self.of_kind(kind))

    def render(self, heading: str, preface: str = "") -> str:
        counts = ", ".join(f"{self.count(kind)} {kind}" for kind in KINDS)
        lines = [f"# {heading}", ""]
        if preface:
            lines += [preface, ""]
        lines += [f"Items: {counts}.", "", "One line per item: `file:line: kind: reason`.", "", "```"]
        lines += [str(item) for item in self.items]
        lines += ["```", ""]
        return "\n".join(lines)


def line_of(text: str, needle: str, start: int = 0) -> int:
    """The 1-based line where ``needle`` first occurs at or after offset ``start`` (1 if nowhere)."""
    at = text.find(needle, start) if needle else -1
    if at < 0:
        at = text.find(needle) if needle else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else 1
