"""Quiz grading on the server: a choice by its key (never its position), per-choice feedback,
short answers normalised, translations graded against the original key, and each learner's own
stable order of the choices."""

from __future__ import annotations

from pathlib import Path

from django.utils import translation

from lessons.lesson import choice_key
from lessons.loader import load_dirs
from lessons.quizzes import choice_order, grade_quiz, normalise_answer, quiz_outcome

QUIZ = """---
title: A quiz
type: quiz
questions:
  - prompt: What does a container share with the host?
    choices:
      - The kernel
      - text: Its own kernel
        why: A container is a process of the host, so there is no second kernel to boot.
      - A hypervisor
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
    choices:
      - 内核
      - text: 自己的内核
        why: 容器是宿主机上的进程，没有第二个内核可以启动。
      - 虚拟机管理程序
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


KERNEL, OWN_KERNEL, HYPERVISOR = (choice_key(c) for c in ("The kernel", "Its own kernel", "A hypervisor"))


def test_right_answers_pass(tmp_path):
    step = _quiz_step(tmp_path)
    passed, results = grade_quiz(step, {"q0": KERNEL, "q1": "  A  Pod. "})
    assert passed and all(r.correct for r in results)


def test_a_wrong_or_missing_answer_fails(tmp_path):
    step = _quiz_step(tmp_path)
    assert not grade_quiz(step, {"q0": OWN_KERNEL, "q1": "pod"})[0]
    assert not grade_quiz(step, {"q0": KERNEL})[0]
    assert not grade_quiz(step, {"q0": "The kernel", "q1": "pod"})[0]  # choices are sent by key
    assert not grade_quiz(step, {"q0": "0", "q1": "pod"})[0]  # positions mean nothing
    assert not grade_quiz(step, {})[0]


def test_a_wrong_choice_gets_its_own_feedback_which_does_not_name_the_answer(tmp_path):
    step = _quiz_step(tmp_path)
    passed, results = grade_quiz(step, {"q0": OWN_KERNEL, "q1": "pod"})
    outcome = quiz_outcome(passed, results)
    assert "no second kernel" in results[0].why_html
    assert "The kernel" not in outcome.feedback + results[0].why_html
    assert grade_quiz(step, {"q0": HYPERVISOR, "q1": "pod"})[1][0].why_html == ""


def test_translated_quiz_uses_the_original_key(tmp_path):
    step = _quiz_step(tmp_path)
    with translation.override("zh-hans"):
        assert step.questions[0].prompt == "容器与宿主机共享什么？"
        assert step.questions[0].answer == "内核"
        assert grade_quiz(step, {"q0": KERNEL, "q1": "容器组"})[0]
        assert grade_quiz(step, {"q0": KERNEL, "q1": "pod"})[0]
        assert not grade_quiz(step, {"q0": HYPERVISOR, "q1": "容器组"})[0]
        assert "第二个内核" in grade_quiz(step, {"q0": OWN_KERNEL})[1][0].why_html


def test_each_learner_has_a_stable_order_and_learners_differ(tmp_path):
    question = _quiz_step(tmp_path).questions[0]
    orders = {learner: choice_order(question, f"{learner}:lesson:step:0") for learner in range(40)}
    assert all(choice_order(question, f"{learner}:lesson:step:0") == order for learner, order in orders.items())
    assert len({tuple(order) for order in orders.values()}) == 6  # every order of three choices occurs
    assert {order[0] for order in orders.values()} == {0, 1, 2}  # the answer is not always first


def test_normalise_answer():
    assert normalise_answer("  The   Scheduler. ") == "the scheduler"
    assert normalise_answer("ｐｏｄ") == "pod"
