"""A lesson file's front matter: the values YAML gives, the line of each key (which every problem
report points at), where the Markdown starts, and the line of a YAML error."""

from __future__ import annotations

from pathlib import Path

import pytest

from lessons.front_matter import LessonError, parse_document

PATH = Path("steps/01-look.md")


def test_values_key_lines_and_body():
    text = "---\ntitle: Look\nhints:\n  - one\n  - two\ntimeout: 30\n---\nLook around.\n"
    doc = parse_document(text, PATH)
    assert doc.meta == {"title": "Look", "hints": ["one", "two"], "timeout": 30}
    assert doc.key_lines == {"title": 2, "hints": 3, "timeout": 6}
    assert (doc.body, doc.body_line) == ("Look around.\n", 8)


def test_a_merge_key_gives_the_merged_values_and_the_lines_as_written():
    text = "---\nbase: &base {timeout: 30}\nstep:\n  <<: *base\n  title: Look\n---\nText.\n"
    doc = parse_document(text, PATH)
    assert doc.meta["step"] == {"timeout": 30, "title": "Look"}
    assert doc.key_lines == {"base": 2, "step": 3}


def test_empty_front_matter_is_an_empty_mapping():
    assert parse_document("---\n---\nText.\n", PATH).meta == {}


@pytest.mark.parametrize(("text", "message"), [
    ("title: Look\n", "steps/01-look.md:1: front matter must start with a '---' line"),
    ("---\ntitle: Look\n", "steps/01-look.md:1: front matter is not closed by a '---' line"),
    ("---\ntitle: Look\nhints: [one\n---\n", "steps/01-look.md:4: front matter is not valid YAML"),
    ("---\n- a list\n---\n", "steps/01-look.md:2: front matter must be a mapping of keys to values"),
])
def test_a_broken_file_names_its_line(text, message):
    with pytest.raises(LessonError, match=message):
        parse_document(text, PATH)
