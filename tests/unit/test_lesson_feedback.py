"""A check's feedback in the learner's language: the messages a check prints are read from its
script, a translation maps them (with {name} for the parts that vary), and every printed line that
matches is shown translated; check_lessons lists what is not translated, failing only with --strict."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from lessons.catalogue import all_lessons, get_lesson
from lessons.feedback import check_messages, compile_rule, translate
from lessons.loader import load_dirs, translation_gaps

CHECK = r'''f="$HOME/pid1.txt"
if [ ! -s "$f" ]; then
  echo "There is no $f yet (or it is empty)."
  exit 1
fi
echo "$(cat "$f")" > /tmp/copy
echo "$f says: $(head -c 200 "$f" | tr -d "\n")"
[ -n "$x" ] || { echo 'Nothing here.'; exit 1; }
echo "Right: $((1024 / 1024)) MiB."
echo "$real"
'''

LESSON = """---
title: Feedback lesson
summary: A check.
workspace: plain
minutes: 1
order: 1
---
Intro.
"""
LESSON_ZH = """---
title: 反馈课程
---
介绍。
"""
STEP = "---\ntitle: A step\ncheck: |\n" + "".join(f"  {line}\n" for line in CHECK.splitlines()) + "solution: |\n  true\n---\nDo it.\n"


def test_the_messages_of_a_check_are_its_echo_strings_with_expansions_as_placeholders():
    assert check_messages(CHECK) == [
        "There is no {} yet (or it is empty).",
        "{} says: {}",
        "Nothing here.",
        "Right: {} MiB.",
    ]


def test_matching_lines_are_translated_with_their_varying_parts():
    rules = (compile_rule("There is no {file} yet (or it is empty).", "还没有 {file}（或者它是空的）。"),
             compile_rule("{file} says: {text}", "{file} 的内容是：{text}"))
    output = "There is no /home/learner/pid1.txt yet (or it is empty).\n/x says: a: b\nkubectl output\n"
    assert translate(output, rules) == "还没有 /home/learner/pid1.txt（或者它是空的）。\n/x 的内容是：a: b\nkubectl output\n"


def _lesson(tmp_path: Path, zh_step: str | None):
    folder = tmp_path / "lessons" / "feedback-lesson"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    (folder / "lesson.zh-hans.md").write_text(LESSON_ZH)
    (folder / "steps" / "01-a-step.md").write_text(STEP)
    if zh_step is not None:
        (folder / "steps" / "01-a-step.zh-hans.md").write_text(zh_step)
    return tmp_path / "lessons"


ZH_ALL = """---
title: 一步
feedback:
  "There is no {file} yet (or it is empty).": "还没有 {file}（或者它是空的）。"
  "{file} says: {text}": "{file} 的内容是：{text}"
  "Nothing here.": "这里什么都没有。"
  "Right: {mib} MiB.": "对：{mib} MiB。"
---
做吧。
"""


def test_a_fully_translated_lesson_has_no_gaps_and_passes_strict(tmp_path):
    folder = _lesson(tmp_path, ZH_ALL)
    lessons, problems = load_dirs([folder])
    assert problems == []
    assert translation_gaps(lessons[0]) == []
    step = lessons[0].steps[0]
    with translation.override("zh-hans"):
        assert translate("Nothing here.", step.localized().feedback) == "这里什么都没有。"
    call_command("check_lessons", str(folder), "--strict", stdout=StringIO(), stderr=StringIO())


def test_untranslated_messages_and_steps_are_warnings_and_errors_only_when_strict(tmp_path):
    folder = _lesson(tmp_path, ZH_ALL.replace('  "Nothing here.": "这里什么都没有。"\n', ""))
    err = StringIO()
    call_command("check_lessons", str(folder), stdout=StringIO(), stderr=err)
    assert "check message not translated (feedback:): Nothing here. (warning)" in err.getvalue()
    with pytest.raises(CommandError, match="translation gap"):
        call_command("check_lessons", str(folder), "--strict", stdout=StringIO(), stderr=StringIO())
    missing = _lesson(tmp_path / "other", None)
    err = StringIO()
    call_command("check_lessons", str(missing), stdout=StringIO(), stderr=err)
    assert "01-a-step.zh-hans.md:1: the step has no zh-hans translation (warning)" in err.getvalue()


def test_a_translation_of_a_message_the_check_never_prints_or_with_a_stray_placeholder_is_an_error(tmp_path):
    folder = _lesson(tmp_path, ZH_ALL.replace('"Nothing here.": "这里什么都没有。"', '"Nothing there.": "{who} 那里什么都没有。"'))
    problems = load_dirs([folder])[1]
    assert any("uses {who}, which the message does not have" in p.message for p in problems)
    folder = _lesson(tmp_path / "b", ZH_ALL.replace('"Nothing here.": "这里什么都没有。"', '"Nothing there.": "那里什么都没有。"'))
    assert any("the check never prints 'Nothing there.'" in p.message for p in load_dirs([folder])[1])


def test_every_lesson_that_has_a_translation_is_translated_completely():
    """Strict for the translated lessons: their steps, quiz whys and check messages (lessons not
    translated at all are warnings only, listed by check_lessons)."""
    translated = [lesson for lesson in all_lessons() if lesson.translations]
    assert {"what-is-a-container", "pods"} <= {lesson.slug for lesson in translated}
    gaps = [str(gap) for lesson in translated for gap in translation_gaps(lesson)]
    assert gaps == []


def test_a_real_checks_message_is_shown_in_chinese():
    step = get_lesson("what-is-a-container").step("hostname")
    with translation.override("zh-hans"):
        shown = translate("There is no /home/learner/hostname.txt yet (or it is empty).\n", step.localized().feedback)
    assert shown == "还没有 /home/learner/hostname.txt（或者它是空的）。\n"
