"""Quiz grading on the server: choice by index, short answers normalised, translations graded
against the original key."""

from __future__ import annotations

from pathlib import Path

from django.utils import translation

from lessons.content_loader import load_dirs
from lessons.services import grade_quiz, normalise_answer

QUIZ = """---
title: A quiz
type: quiz
questions:
  - prompt: What does a container share with the host?
    choices: [The kernel, Its own kernel, A hypervisor]
    answer: The kernel
  - prompt: Name the smallest unit Kubernetes runs
    answer_text: [pod, a pod]
---
Answer.
"""
QUIZ_ZH = """---
title: 测验
questions:
  - prompt: 容器与宿主机共享什么？
    choices: [内核, 自己的内核, 虚拟机管理程序]
  - prompt: Kubernetes 运行的最小单位是什么？
    answer_text: [容器组]
---
回答。
"""
LESSON = """---
title: Quiz lesson
summary: A quiz.
workspace: plain
minutes: 1
order: 1
---
Intro.
"""


def _quiz_step(tmp_path: Path):
    folder = tmp_path / "lessons" / "quiz-lesson"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    (folder / "steps" / "01-quiz.md").write_text(QUIZ)
    (folder / "steps" / "01-quiz.zh-hans.md").write_text(QUIZ_ZH)
    lessons, problems = load_dirs([tmp_path / "lessons"])
    assert problems == []
    return lessons[0].steps[0]


def test_right_answers_pass(tmp_path):
    step = _quiz_step(tmp_path)
    passed, results = grade_quiz(step, {"q0": "0", "q1": "  A  Pod. "})
    assert passed and all(r.correct for r in results)


def test_a_wrong_or_missing_answer_fails(tmp_path):
    step = _quiz_step(tmp_path)
    assert not grade_quiz(step, {"q0": "1", "q1": "pod"})[0]
    assert not grade_quiz(step, {"q0": "0"})[0]
    assert not grade_quiz(step, {"q0": "The kernel", "q1": "pod"})[0]  # choices are sent by index
    assert not grade_quiz(step, {})[0]


def test_translated_quiz_uses_the_original_key(tmp_path):
    step = _quiz_step(tmp_path)
    with translation.override("zh-hans"):
        assert step.questions[0].prompt == "容器与宿主机共享什么？"
        assert step.questions[0].answer == "内核"
        assert grade_quiz(step, {"q0": "0", "q1": "容器组"})[0]
        assert grade_quiz(step, {"q0": "0", "q1": "pod"})[0]
        assert not grade_quiz(step, {"q0": "2", "q1": "容器组"})[0]


def test_normalise_answer():
    assert normalise_answer("  The   Scheduler. ") == "the scheduler"
    assert normalise_answer("ｐｏｄ") == "pod"
