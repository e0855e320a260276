"""Export then import gives back an equivalent lesson: the same title, summary, workspace and image,
the same steps (slugs, order, titles, types, text, hints, quizzes) and the same scripts (check,
solution, setup, timeout). Every lesson of the curriculum is sent round; so is an imported scenario.

What Killercoda has no place for (minutes, order, prerequisites, learned, sandbox limits,
translations) is not expected back: the export report names it instead."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from lessons.lesson import Lesson
from lessons.loader import CONTENT_DIR, load_dirs
from lessons.scenarios.exporter import REPORT_NAME, export_lesson
from lessons.scenarios.importer import import_path

CURRICULUM, _ = load_dirs([CONTENT_DIR])
FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"


# Lessons that run a refused command on purpose (to show the refusal) come back with the importer's
# note about it at the top of their text: the importer cannot know the refusal is the lesson.
SHOWS_A_REFUSAL = {"scheduling": "a cluster-scoped object"}
IMPORT_NOTE = re.compile(r"<blockquote>\n<p><strong>Imported:</strong>.*?</blockquote>\n", re.S)


def _without_import_note(before: Lesson, after_html: str) -> str:
    if before.slug not in SHOWS_A_REFUSAL:
        return after_html
    assert SHOWS_A_REFUSAL[before.slug] in after_html, "the importer no longer names the refused command"
    return IMPORT_NOTE.sub("", after_html, count=1)


def _equivalent(before: Lesson, after: Lesson) -> list[str]:
    differences = [attr for attr in ("slug", "title", "summary", "workspace", "image") if getattr(before, attr) != getattr(after, attr)]
    if before.body_html != _without_import_note(before, after.body_html):
        differences.append("body_html")
    if [s.slug for s in before.steps] != [s.slug for s in after.steps]:
        return differences + [f"steps {[s.slug for s in before.steps]} != {[s.slug for s in after.steps]}"]
    for one, other in zip(before.steps, after.steps):
        differences += [f"{one.slug}.{attr}" for attr in ("title", "type", "timeout", "hints", "body_html") if getattr(one, attr) != getattr(other, attr)]
        # A wrong choice's feedback (why) has no place in Katacoda's quiz: the export reports it.
        if [dataclasses.replace(q, whys=()) for q in one.questions] != [dataclasses.replace(q, whys=()) for q in other.questions]:
            differences.append(f"{one.slug}.questions")
        differences += [f"{one.slug}.{attr}" for attr in ("check", "solution", "setup") if getattr(one, attr).strip() != getattr(other, attr).strip()]
    return differences


@pytest.mark.parametrize("lesson", CURRICULUM, ids=[lesson.slug for lesson in CURRICULUM])
def test_every_lesson_comes_back_from_a_killercoda_round_trip(lesson, tmp_path):
    exported = export_lesson(lesson.path, tmp_path / "scenarios")
    import_path(exported.folder, tmp_path / "lessons", order=lesson.order)
    # The rest of the curriculum beside it, so that its links to other lessons lead somewhere.
    for other in CURRICULUM:
        if other.slug != lesson.slug:
            (tmp_path / "lessons" / other.slug).symlink_to(other.path)
    lessons, problems = load_dirs([tmp_path / "lessons"])
    assert problems == []
    back = next(candidate for candidate in lessons if candidate.slug == lesson.slug)
    assert back.path == tmp_path / "lessons" / lesson.slug
    assert _equivalent(lesson, back) == []


def test_an_imported_scenario_survives_export_and_import(tmp_path):
    [first] = import_path(FIXTURES / "katacoda-kubernetes", tmp_path / "first")
    exported = export_lesson(first.folder, tmp_path / "scenarios")
    import_path(exported.folder, tmp_path / "second")
    [before], _ = load_dirs([tmp_path / "first"])
    [after], problems = load_dirs([tmp_path / "second"])
    assert problems == []
    assert _equivalent(before, after) == []


def test_the_export_writes_killercoda_files_and_reports_what_does_not_map(tmp_path):
    pods = CONTENT_DIR / "pods"
    exported = export_lesson(pods, tmp_path)
    index = (exported.folder / "index.json").read_text()
    assert '"imageid": "kubernetes-kubeadm-1node"' in index
    verify = (exported.folder / "02-apply" / "verify.sh").read_text()
    assert verify.startswith("#!/bin/sh\n# tutorial-check: prints its own feedback; timeout=90\n")
    text = (exported.folder / "02-apply" / "text.md").read_text()
    assert "```\nkubectl apply -f ~/web.yaml\nkubectl get pods -w\n```{{exec}}" in text
    assert "<details><summary>Hint 1</summary>" in text and "<details><summary>Solution</summary>" in text
    report = (exported.folder / REPORT_NAME).read_text()
    for words in ("minutes = 35: not exported", "order = 20: not exported", "prerequisites = ['what-is-a-container']", "learned = ",
                  "steps/01-a-pod-manifest.zh-hans.md:1: reported: a translation", "$REGISTRY (the classroom registry) has no value on Killercoda",
                  "warning: no LICENSE"):
        assert words in report, words


def test_a_quiz_is_exported_in_katacoda_syntax(tmp_path):
    exported = export_lesson(CONTENT_DIR / "big-picture", tmp_path)
    text = next(exported.folder.glob("01-*/text.md")).read_text()
    assert re.search(r"^>>Q1: .+<<$", text, re.MULTILINE)
    assert re.search(r"^\(\*\) ", text, re.MULTILINE)
    assert "Killercoda has no quizzes" in (exported.folder / REPORT_NAME).read_text()


def test_the_export_command_takes_a_slug(tmp_path):
    out = io.StringIO()
    call_command("export_scenario", "containers", "--into", str(tmp_path / "out"), stdout=out)
    assert (tmp_path / "out" / "containers" / "index.json").is_file()
    assert REPORT_NAME in out.getvalue()
