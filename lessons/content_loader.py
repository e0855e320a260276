"""Load lessons from folders: ``lesson.md`` with YAML front matter, rendered and sanitized.

Minimal loader for the foundation; the lesson engine extends it with steps, scripts and checks.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import nh3
import yaml
from django.conf import settings
from markdown_it import MarkdownIt

CONTENT_DIR = Path(__file__).resolve().parent / "content"


class LessonError(ValueError):
    """A malformed lesson; the message names the file (and line where known)."""


@dataclasses.dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    summary: str
    workspace: str
    image: str
    minutes: int
    order: int
    body_html: str
    path: Path


def lesson_dirs() -> list[Path]:
    return [CONTENT_DIR, *(Path(p) for p in getattr(settings, "LESSON_DIRS", []))]


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    if not text.startswith("---\n"):
        raise LessonError(f"{path}:1: front matter must start with a '---' line")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise LessonError(f"{path}:1: front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 2
        raise LessonError(f"{path}:{line}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise LessonError(f"{path}:2: front matter must be a mapping")
    return meta, text[end + 5 :]


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str) -> str:
    """Markdown to sanitized HTML (lesson folders may come from instructors)."""
    return nh3.clean(_markdown.render(text))


def load_lesson(folder: Path) -> Lesson:
    path = folder / "lesson.md"
    meta, body = split_front_matter(path.read_text(encoding="utf-8"), path)
    return Lesson(
        slug=folder.name,
        title=str(meta.get("title", folder.name)),
        summary=str(meta.get("summary", "")),
        workspace=str(meta.get("workspace", "plain")),
        image=str(meta.get("image", "base")),
        minutes=int(meta.get("minutes", 10)),
        order=int(meta.get("order", 100)),
        body_html=render_markdown(body),
        path=folder,
    )


@cache
def all_lessons() -> tuple[Lesson, ...]:
    lessons = []
    for directory in lesson_dirs():
        for folder in sorted(p for p in directory.iterdir() if (p / "lesson.md").is_file()):
            lessons.append(load_lesson(folder))
    return tuple(sorted(lessons, key=lambda lesson: (lesson.order, lesson.slug)))


def get_lesson(slug: str) -> Lesson | None:
    return next((lesson for lesson in all_lessons() if lesson.slug == slug), None)
