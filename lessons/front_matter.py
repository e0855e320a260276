"""A lesson file's YAML front matter and Markdown body, with the line of every front-matter key.

Every lesson file (``lesson.md``, a step, a translation) starts with front matter between two
``---`` lines. ``parse_document`` keeps the line each key is on, so a problem found later names
the file and line an author has to open; a file that cannot be parsed raises ``LessonError``
with that file and line in its message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml


class LessonError(ValueError):
    """A malformed lesson file; the message names the file (and line where known)."""


@dataclasses.dataclass
class Document:
    """One parsed lesson file."""

    path: Path
    meta: dict[str, Any]
    key_lines: dict[str, int]  # front-matter key -> line in the file (1-based)
    body: str
    body_line: int  # line where the Markdown body starts


# libyaml's parser (where PyYAML has it) gives the same values and lines in a tenth of the time,
# worded its own way on bad YAML: every load of a lesson folder parses a few hundred of these.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(text: str, path: Path) -> Document:
    """Parse ``---`` YAML front matter and the Markdown body; errors name the file and line."""
    text = text.replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise LessonError(f"{path}:1: front matter must start with a '---' line")
    end = text.find("\n---\n", 3)
    if end < 0:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise LessonError(f"{path}:1: front matter is not closed by a '---' line")
    source = text[4 : end + 1]
    # One pass over the YAML gives both the node tree (for the keys' lines) and the values built
    # from it, as yaml.safe_load builds them. The lines are read first: building flattens merge
    # keys (<<) in the tree.
    loader = _SafeLoader(source)
    key_lines: dict[str, int] = {}
    try:
        node = loader.get_single_node()
        if isinstance(node, yaml.MappingNode):
            for key_node, _value in node.value:
                key_lines[str(key_node.value)] = key_node.start_mark.line + 2
        meta = (loader.construct_document(node) if node is not None else None) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise LessonError(f"{path}:{line}: front matter is not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    if not isinstance(meta, dict):
        raise LessonError(f"{path}:2: front matter must be a mapping of keys to values")
    body_line = text[: end + 5].count("\n") + 1
    return Document(path, meta, key_lines, text[end + 5 :], body_line)
