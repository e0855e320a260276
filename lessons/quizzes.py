"""Quizzes, graded on the server: the order each learner sees the choices in, and grading.

A multiple-choice answer comes back as the choice's key (``lessons.lesson.choice_key``), never a
position, so a shuffled order or another language grades the same; short answers compare after
``normalise_answer``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import unicodedata

from django.utils.translation import gettext as _

from .lesson import Lesson, Question, Step
from .models import CheckAttempt
from .progress import CheckOutcome


def normalise_answer(text: str) -> str:
    """Short answers compare without case, surrounding space, repeated spaces or width forms."""
    text = unicodedata.normalize("NFKC", text or "").strip().casefold()
    text = " ".join(text.split())
    return text.rstrip(".。")


@dataclasses.dataclass(frozen=True)
class QuestionResult:
    question: Question
    given: str
    correct: bool

    @property
    def why_html(self) -> str:
        """What the author wrote about the chosen answer (never which choice is right)."""
        return self.question.why_html(self.given) if self.question.is_choice else ""


@dataclasses.dataclass(frozen=True)
class ShownQuestion:
    """A question as one learner sees it: its choices as (key, html) in that learner's order."""

    number: int
    question: Question
    choices: tuple[tuple[str, str], ...]


def choice_order(question: Question, seed: str) -> list[int]:
    """The positions of the question's choices in the order one learner sees them.

    Seeded, not random: the same learner sees the same order on every reload (an answer they
    picked stays where it was), while different learners see different orders, so "the first one"
    is no answer and neither is a neighbour's position.
    """
    order = list(range(len(question.choices)))
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def quiz_seed(learner_id, lesson: Lesson, step: Step, number: int) -> str:
    return f"{learner_id}:{lesson.slug}:{step.slug}:{number}"


def shown_questions(learner_id, lesson: Lesson, step: Step) -> list[ShownQuestion]:
    """The step's questions in the active language, choices in this learner's order."""
    shown = []
    for number, question in enumerate(step.questions):
        order = choice_order(question, quiz_seed(learner_id, lesson, step, number)) if question.is_choice else []
        choices = tuple((question.keys[i], question.choices_html[i]) for i in order)
        shown.append(ShownQuestion(number, question, choices))
    return shown


def grade_quiz(step: Step, answers: dict[str, str]) -> tuple[bool, list[QuestionResult]]:
    """Grade a quiz on the server. ``answers`` maps ``q<N>`` to the chosen choice's key or the text typed.

    A multiple-choice answer is the choice's key (``choice_key`` of the original's text), not its
    position: positions differ from learner to learner, and keys do not depend on the language
    the learner reads the quiz in.
    """
    results = []
    for number, question in enumerate(step.questions):
        given = str(answers.get(f"q{number}", "")).strip()
        if question.is_choice:
            correct = bool(given) and given == question.answer_key
        else:
            accepted = {normalise_answer(a) for a in question.answer_text}
            # Accept the original language's answers too: a learner may switch language mid-quiz.
            accepted |= {normalise_answer(a) for q in [step.text.questions[number]] for a in q.answer_text}
            correct = bool(given) and normalise_answer(given) in accepted
        results.append(QuestionResult(question, given, correct))
    return all(r.correct for r in results) and bool(results), results


def quiz_outcome(passed: bool, results: list[QuestionResult]) -> CheckOutcome:
    wrong = [str(i + 1) for i, r in enumerate(results) if not r.correct]
    if passed:
        feedback = _("All answers are right.")
    else:
        feedback = _("Not quite: look again at question(s) %(numbers)s.") % {"numbers": ", ".join(wrong)}
    return CheckOutcome(passed, CheckAttempt.Outcome.PASSED if passed else CheckAttempt.Outcome.FAILED, feedback)
