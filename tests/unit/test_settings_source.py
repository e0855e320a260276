"""The settings module states each default once: a value assigned twice at the top level means a
reader who finds the first one is misled about what runs."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

SETTINGS = Path(__file__).resolve().parents[2] / "tutorial" / "settings.py"


def test_each_setting_is_assigned_once_at_the_top_level():
    tree = ast.parse(SETTINGS.read_text(encoding="utf-8"))
    lines = collections.defaultdict(list)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id.isupper():
                lines[target.id].append(node.lineno)
    assert {name: at for name, at in lines.items() if len(at) > 1} == {}


def test_settings_comments_say_why_not_which_issue():
    text = SETTINGS.read_text(encoding="utf-8").lower()
    assert "(issue " not in text and "the lead" not in text
