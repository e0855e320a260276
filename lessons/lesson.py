"""A lesson as the site serves it: frozen values read from a lesson folder by ``lessons.loader``.

A ``Lesson`` holds its ``Step``s, a quiz step its ``Question``s. Text that a translation may change
(titles, Markdown bodies, hints, questions, check messages) lives in ``LessonText``/``StepText``,
once for the original and once per translated language; ``Translated`` picks the active
language's, falling back to the original. Scripts (check, solution, setup) and numbers come from
the original only. Quiz choices are identified by ``choice_key`` of the original's text, the same
in every language and every order a learner sees them in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

from django.conf import settings
from django.utils import translation

from .markdown import render_inline


def choice_key(original_text: str) -> str:
    """A choice's identity, the same in every language and every order it is shown in: learners
    send it back instead of a position, and it says nothing about which choice is right."""
    return hashlib.sha256(original_text.encode("utf-8")).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Question:
    prompt: str
    choices: tuple[str, ...] = ()
    answer: str | None = None  # the correct choice, for multiple choice
    answer_text: tuple[str, ...] = ()  # accepted answers, for short answer
    keys: tuple[str, ...] = ()  # each choice's identity (``choice_key`` of the original's text)
    whys: tuple[str, ...] = ()  # each choice's feedback, shown to a learner who picked it ("" if none)

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    @property
    def answer_key(self) -> str:
        return self.keys[self.choices.index(self.answer)] if self.is_choice else ""

    def why_html(self, key: str) -> str:
        """The feedback written for the choice ``key`` (sanitized HTML), or ``""``."""
        if key in self.keys and self.whys:
            why = self.whys[self.keys.index(key)]
            return render_inline(why) if why else ""
        return ""

    def choice_index(self, key: str) -> int | None:
        return self.keys.index(key) if key in self.keys else None

    @property
    def prompt_html(self) -> str:
        return render_inline(self.prompt)

    @property
    def choices_html(self) -> tuple[str, ...]:
        return tuple(render_inline(choice) for choice in self.choices)


@dataclasses.dataclass(frozen=True)
class StepText:
    """The language-dependent part of a step."""

    title: str
    body_html: str
    hints: tuple[str, ...]  # each already rendered to sanitized HTML
    questions: tuple[Question, ...]
    # The check's messages in this language (``feedback:`` of a translation), see lessons.feedback.
    feedback: tuple[tuple[re.Pattern, str], ...] = ()
    feedback_keys: tuple[str, ...] = ()


class Translated:
    """Text in the active language (or ``language``), falling back to the original."""

    def localized(self, language: str | None = None):
        language = (language or translation.get_language() or "").lower()
        return self.translations.get(language, self.text)

    @property
    def language(self) -> str:
        """The language of the text shown now: the active one if translated, else the original's
        (lessons are written in ``settings.LANGUAGE_CODE``), for templates' ``lang`` attributes."""
        active = (translation.get_language() or "").lower()
        return active if active in self.translations else settings.LANGUAGE_CODE


@dataclasses.dataclass(frozen=True)
class Step(Translated):
    slug: str
    number: int
    type: str
    check: str
    solution: str
    setup: str
    timeout: int
    path: Path
    text: StepText
    translations: dict[str, StepText] = dataclasses.field(default_factory=dict)

    # Convenience accessors in the active language, for templates.
    @property
    def title(self) -> str:
        return self.localized().title

    @property
    def body_html(self) -> str:
        return self.localized().body_html

    @property
    def hints(self) -> tuple[str, ...]:
        return self.localized().hints

    @property
    def questions(self) -> tuple[Question, ...]:
        return self.localized().questions

    @property
    def is_quiz(self) -> bool:
        return self.type == "quiz"

    @property
    def is_gated(self) -> bool:
        """Whether the learner must pass something (a check or a quiz) to go on."""
        return self.is_quiz or bool(self.check)


@dataclasses.dataclass(frozen=True)
class LessonText:
    title: str
    summary: str
    body_html: str
    learned: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Lesson(Translated):
    slug: str
    workspace: str
    image: str
    minutes: int
    order: int
    prerequisites: tuple[str, ...]
    path: Path
    text: LessonText
    # ``sandbox:`` in the front matter: the lesson's own limits, e.g. {"ttl": 5400, "idle": 900}.
    sandbox_limits: tuple[tuple[str, int], ...] = ()
    steps: tuple[Step, ...] = ()
    translations: dict[str, LessonText] = dataclasses.field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.localized().title

    @property
    def summary(self) -> str:
        return self.localized().summary

    @property
    def body_html(self) -> str:
        return self.localized().body_html

    @property
    def learned(self) -> tuple[str, ...]:
        return self.localized().learned

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.translations))

    def step(self, slug: str) -> Step | None:
        return next((s for s in self.steps if s.slug == slug), None)

    def step_index(self, slug: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.slug == slug)
