"""``manage.py check_lessons``: the real curriculum passes; every bad lesson is rejected with the
right message, naming its file and line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

BAD_LESSONS = Path(__file__).parent / "fixtures" / "bad_lessons"
CASES = sorted(p for p in BAD_LESSONS.iterdir() if p.is_dir())


def _run(*dirs: Path) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_lessons", *[str(d) for d in dirs], stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_the_curriculum_is_valid():
    out, err, error = _run()
    assert error is None, err
    assert "all valid" in out
    # Only translation warnings (untranslated steps and check messages) may be listed.
    assert all(line.endswith("(warning)") for line in err.splitlines()), err


def test_every_case_has_an_expectation():
    assert len(CASES) >= 15
    for case in CASES:
        assert (case / "expected.txt").is_file(), case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_lesson_is_rejected_with_file_line_and_message(case: Path):
    expected = (case / "expected.txt").read_text().strip()
    _out, err, error = _run(case)
    assert error is not None, f"{case.name} was accepted"
    assert f"{case}/{expected}" in err, f"expected {expected!r} in:\n{err}"


def test_a_broken_lesson_is_not_served_but_the_others_are(settings, tmp_path):
    from lessons.catalogue import all_lessons, get_lesson

    settings.LESSON_DIRS = [str(BAD_LESSONS / "unknown-image")]
    assert get_lesson("big-picture") is not None
    assert all(lesson.path.parent != BAD_LESSONS / "unknown-image" for lesson in all_lessons())


def test_duplicate_slug_across_lesson_dirs(tmp_path):
    good = BAD_LESSONS / "duplicate-order" / "one"
    for name in ("a", "b"):
        folder = tmp_path / name / "one"
        (folder / "steps").mkdir(parents=True)
        (folder / "lesson.md").write_text((good / "lesson.md").read_text().replace("order: 3", f"order: {ord(name)}"))
        (folder / "steps" / "01-a-step.md").write_text((good / "steps" / "01-a-step.md").read_text())
    _out, err, error = _run(tmp_path / "a", tmp_path / "b")
    assert error is not None
    assert f"{tmp_path / 'b' / 'one' / 'lesson.md'}:1: duplicate lesson slug 'one'" in err


def test_missing_folder_is_a_clear_error(tmp_path):
    _out, _err, error = _run(tmp_path / "nope")
    assert error is not None and "no such folder" in str(error)
