"""Load lesson folders and validate them, naming the file and line of every problem.

A lesson is a folder (under ``lessons/content/`` or any folder in ``settings.LESSON_DIRS``)::

    my-lesson/
      lesson.md               YAML front matter (title, summary, workspace, image, minutes, order,
                              prerequisites, learned, sandbox) + Markdown introduction
      lesson.zh-hans.md       optional translation (text keys and body only)
      steps/01-first-step.md  YAML front matter (title, type, check, hints, solution, setup,
                              timeout, questions) + Markdown text
      steps/01-first-step.zh-hans.md   optional translation (text only: scripts come from the original;
                              ``feedback:`` translates the check's messages, see ``lessons.feedback``)

Quiz choices are texts or ``{text, why}`` mappings; each has a key (``choice_key``) that learners
send back instead of a position. ``translation_gaps`` lists what a lesson lacks in a language.

``load_dirs`` reads each file once and returns the lessons that validate (``lessons.lesson`` values)
and every problem as a :class:`Problem` (file, line, message); ``validate_dirs`` only the problems.
Nothing is cached here: ``lessons.catalogue`` keeps what a process serves.
The full format is documented in ``docs/authoring.md``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from django.conf import settings

from sandbox.images.recipes import RECIPES

from .feedback import FeedbackError, check_messages, compile_rule, shape
from .front_matter import Document, LessonError, parse_document
from .lesson import Lesson, LessonText, Question, Step, StepText, choice_key
from .markdown import render_inline, render_markdown

CONTENT_DIR = Path(__file__).resolve().parent / "content"

WORKSPACES = ("plain", "docker", "kubernetes")
STEP_TYPES = ("task", "quiz")
MAX_TIMEOUT_SECONDS = 300
DEFAULT_TIMEOUT_SECONDS = 20

LESSON_KEYS = {
    "title": "required",
    "summary": "required",
    "workspace": "required",
    "image": "optional",
    "minutes": "required",
    "order": "required",
    "prerequisites": "optional",
    "learned": "optional",
    "sandbox": "optional",
}
# The lesson's own sandbox limits (seconds, or a count), over the site's settings; an instructor's
# SANDBOX_LESSON_LIMITS for the lesson still wins over these.
SANDBOX_LIMIT_KEYS = ("ttl", "idle", "warn", "extend", "max_extensions")
LESSON_TRANSLATABLE_KEYS = {"title", "summary", "learned"}
STEP_KEYS = {
    "title",
    "type",
    "check",
    "check_file",
    "hints",
    "solution",
    "solution_file",
    "setup",
    "setup_file",
    "timeout",
    "questions",
}
STEP_TRANSLATABLE_KEYS = {"title", "hints", "questions", "feedback"}
QUESTION_KEYS = {"prompt", "choices", "answer", "answer_text"}
CHOICE_KEYS = {"text", "why"}
STEP_FILE_RE = re.compile(r"^(?P<number>\d+)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
STEP_TRANSLATION_RE = re.compile(r"^(?P<stem>\d+-[a-z0-9-]+)\.(?P<lang>[a-z]{2}(?:-[a-z]+)?)\.md$")
LESSON_TRANSLATION_RE = re.compile(r"^lesson\.(?P<lang>[a-z]{2}(?:-[a-z]+)?)\.md$")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Links between lessons are written as site paths: /lessons/<slug>/ (optionally /steps/<step>/).
LESSON_LINK_RE = re.compile(r"\]\(\s*/lessons/(?P<slug>[^/)\s]+)/?(?:steps/(?P<step>[^/)\s]+)/?)?[^)]*\)")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem in a lesson folder, printed as ``path:line: message``."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def lesson_dirs() -> list[Path]:
    extra = getattr(settings, "LESSON_DIRS", []) or []
    return [CONTENT_DIR, *(Path(p) for p in extra)]


def known_images() -> set[str]:
    return set(RECIPES) | set(getattr(settings, "LESSON_EXTRA_IMAGES", []) or [])


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def at(self, doc: Document, key: str, message: str) -> None:
        self.add(doc.path, doc.key_lines.get(key, 1), message)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_text(item) for item in value)


def _script(doc: Document, key: str, folder: Path, out: _Collector) -> str:
    """A script given inline (``check:``) or as a file beside the step (``check_file:``)."""
    inline = doc.meta.get(key)
    file_key = f"{key}_file"
    filename = doc.meta.get(file_key)
    if inline is not None and filename is not None:
        out.at(doc, file_key, f"give either '{key}' or '{file_key}', not both")
    if filename is not None:
        if not _is_text(filename):
            out.at(doc, file_key, f"'{file_key}' must be a file name")
            return ""
        script_path = (folder / filename).resolve()
        if folder.resolve() not in script_path.parents or not script_path.is_file():
            out.at(doc, file_key, f"script file {filename!r} does not exist in {folder}")
            return ""
        return script_path.read_text(encoding="utf-8")
    if inline is None:
        return ""
    if not _is_text(inline):
        out.at(doc, key, f"'{key}' must be a non-empty shell script (use '{key}: |' and indent it)")
        return ""
    return str(inline)


def _questions(doc: Document, out: _Collector, raw: Any) -> tuple[Question, ...]:
    if not isinstance(raw, list) or not raw:
        out.at(doc, "questions", "'questions' must be a non-empty list")
        return ()
    questions = []
    for number, item in enumerate(raw, start=1):
        where = f"question {number}"
        if not isinstance(item, dict):
            out.at(doc, "questions", f"{where} must be a mapping with 'prompt' and 'choices'/'answer' or 'answer_text'")
            continue
        unknown = sorted(set(item) - QUESTION_KEYS)
        if unknown:
            out.at(doc, "questions", f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(QUESTION_KEYS))})")
        prompt = item.get("prompt")
        if not _is_text(prompt):
            out.at(doc, "questions", f"{where}: 'prompt' is required")
            continue
        choices = item.get("choices")
        answer = item.get("answer")
        answer_text = item.get("answer_text")
        if choices is not None:
            parsed = _choices(doc, out, where, choices)
            if parsed is None or len(parsed) < 2:
                out.at(doc, "questions", f"{where}: 'choices' must be a list of at least two answers")
                continue
            choices = [text for text, _why in parsed]
            whys = tuple(why for _text, why in parsed)
            if len(set(choices)) != len(choices):
                out.at(doc, "questions", f"{where}: 'choices' has duplicates")
            if answer is None or str(answer) not in choices:
                out.at(doc, "questions", f"{where}: 'answer' must be one of the choices")
                continue
            if answer_text is not None:
                out.at(doc, "questions", f"{where}: give 'choices' + 'answer' or 'answer_text', not both")
            keys = tuple(choice_key(c) for c in choices)
            questions.append(Question(str(prompt), tuple(choices), str(answer), (), keys, whys))
        elif answer_text is not None:
            if isinstance(answer_text, (str, int, float)):
                answer_text = [answer_text]
            if not isinstance(answer_text, list) or not answer_text or not all(isinstance(a, (str, int, float)) for a in answer_text):
                out.at(doc, "questions", f"{where}: 'answer_text' must be a list of accepted answers")
                continue
            if answer is not None:
                out.at(doc, "questions", f"{where}: 'answer' needs 'choices'; use 'answer_text' for short answers")
            questions.append(Question(str(prompt), (), None, tuple(str(a) for a in answer_text)))
        else:
            out.at(doc, "questions", f"{where}: needs 'choices' + 'answer' (multiple choice) or 'answer_text' (short answer)")
    return tuple(questions)


def _choices(doc: Document, out: _Collector, where: str, raw: Any) -> list[tuple[str, str]] | None:
    """Choices as (text, why): each is an answer, or a mapping ``{text: ..., why: ...}`` whose
    ``why`` is what a learner who picks it reads (a misconception named, never the right answer)."""
    if not isinstance(raw, list):
        return None
    parsed = []
    for choice in raw:
        if isinstance(choice, (str, int, float)) and not isinstance(choice, bool):
            parsed.append((str(choice), ""))
        elif isinstance(choice, dict) and _is_text(choice.get("text")):
            unknown = sorted(set(choice) - CHOICE_KEYS)
            if unknown:
                out.at(doc, "questions", f"{where}: a choice may set only text and why, not {', '.join(unknown)}")
            why = choice.get("why", "")
            if not isinstance(why, str):
                out.at(doc, "questions", f"{where}: a choice's 'why' must be text")
                why = ""
            parsed.append((str(choice["text"]), why.strip()))
        else:
            return None
    return parsed


def _translated_questions(doc: Document, out: _Collector, raw: Any, original: tuple[Question, ...]) -> tuple[Question, ...]:
    """Translated prompts and choices, position by position; answers stay those of the original."""
    if not isinstance(raw, list) or len(raw) != len(original):
        out.at(doc, "questions", f"a translation must give the same number of questions as the original ({len(original)})")
        return original
    translated = []
    for number, (item, source) in enumerate(zip(raw, original), start=1):
        if not isinstance(item, dict) or not _is_text(item.get("prompt")):
            out.at(doc, "questions", f"question {number}: a translation needs a 'prompt'")
            translated.append(source)
            continue
        unknown = sorted(set(item) - {"prompt", "choices", "answer_text"})
        if unknown:
            out.at(doc, "questions", f"question {number}: a translation may only change prompt, choices and answer_text, not {', '.join(unknown)}")
        choices = list(source.choices)
        whys = source.whys
        if source.is_choice and "choices" in item:
            parsed = _choices(doc, out, f"question {number}", item["choices"])
            if parsed is None or len(parsed) != len(source.choices):
                out.at(doc, "questions", f"question {number}: a translation must give the same number of choices ({len(source.choices)})")
            else:
                choices = [text for text, _why in parsed]
                # A choice without a translated why keeps the original's.
                whys = tuple(why or original for (_text, why), original in zip(parsed, source.whys))
        accepted = item.get("answer_text") or []
        if isinstance(accepted, str):
            accepted = [accepted]
        answer = None
        if source.is_choice:
            answer = str(choices[source.choices.index(source.answer)])
        translated.append(
            Question(
                str(item["prompt"]),
                tuple(str(c) for c in choices) if source.is_choice else (),
                answer,
                tuple(source.answer_text) + tuple(str(a) for a in accepted),
                source.keys,
                whys if source.is_choice else (),
            )
        )
    return tuple(translated)


def _lesson_links(doc: Document, out: _Collector, slugs_and_steps: dict[str, set[str]]) -> None:
    for offset, line in enumerate(doc.body.split("\n")):
        for match in LESSON_LINK_RE.finditer(line):
            slug, step = match.group("slug"), match.group("step")
            if slug not in slugs_and_steps:
                out.add(doc.path, doc.body_line + offset, f"link to a lesson that does not exist: /lessons/{slug}/")
            elif step and step not in slugs_and_steps[slug]:
                out.add(doc.path, doc.body_line + offset, f"link to a step that does not exist: /lessons/{slug}/steps/{step}/")


def _read(path: Path, out: _Collector) -> Document | None:
    try:
        return parse_document(path.read_text(encoding="utf-8"), path)
    except UnicodeDecodeError:
        out.add(path, 1, "file is not UTF-8 text")
    except LessonError as exc:
        text = str(exc)
        prefix = f"{path}:"
        line, _, message = text[len(prefix) :].partition(": ") if text.startswith(prefix) else ("1", "", text)
        out.add(path, int(line) if line.isdigit() else 1, message)
    return None


def _load_step(path: Path, match: re.Match, out: _Collector, languages: set[str]) -> tuple[Step, Document] | None:
    """One step file and its translations; the step and its parsed file (for the link checks)."""
    doc = _read(path, out)
    if doc is None:
        return None
    meta = doc.meta
    unknown = sorted(set(meta) - STEP_KEYS)
    for key in unknown:
        out.at(doc, key, f"unknown key '{key}' (known: {', '.join(sorted(STEP_KEYS))})")
    if not _is_text(meta.get("title")):
        out.at(doc, "title", "'title' is required")
    step_type = meta.get("type", "task")
    if step_type not in STEP_TYPES:
        out.at(doc, "type", f"'type' must be one of {', '.join(STEP_TYPES)}, not {step_type!r}")
    folder = path.parent
    check = _script(doc, "check", folder, out)
    solution = _script(doc, "solution", folder, out)
    setup = _script(doc, "setup", folder, out)
    hints = meta.get("hints", [])
    if isinstance(hints, str):
        hints = [hints]
    if not _string_list(hints):
        out.at(doc, "hints", "'hints' must be a list of texts")
        hints = []
    timeout = meta.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        out.at(doc, "timeout", f"'timeout' must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}")
        timeout = DEFAULT_TIMEOUT_SECONDS
    questions: tuple[Question, ...] = ()
    if step_type == "quiz":
        questions = _questions(doc, out, meta.get("questions"))
        for key in ("check", "solution", "check_file", "solution_file"):
            if key in meta:
                out.at(doc, key, f"a quiz step is checked on the server: remove '{key}'")
        check = solution = ""
    else:
        if "questions" in meta:
            out.at(doc, "questions", "'questions' belong to quiz steps: add 'type: quiz'")
        if check and not solution:
            out.at(doc, "check", "a step with a check needs a 'solution' script (the tests run it)")
        if solution and not check:
            out.at(doc, "solution", "a 'solution' needs a 'check' that it makes pass")
    if not doc.body.strip():
        out.add(path, doc.body_line, "the step has no text")
    text = StepText(
        title=str(meta.get("title", match.group("slug"))),
        body_html=render_markdown(doc.body),
        hints=tuple(render_inline(h) for h in hints),
        questions=questions,
    )
    translations: dict[str, StepText] = {}
    for language in sorted(languages):
        tpath = path.with_name(f"{path.stem}.{language}.md")
        if not tpath.is_file():
            continue
        tdoc = _read(tpath, out)
        if tdoc is None:
            continue
        for key in sorted(set(tdoc.meta) - STEP_TRANSLATABLE_KEYS):
            out.at(tdoc, key, f"a translation may only set {', '.join(sorted(STEP_TRANSLATABLE_KEYS))}; '{key}' comes from the original")
        thints = tdoc.meta.get("hints", hints)
        if isinstance(thints, str):
            thints = [thints]
        if not _string_list(thints) or len(thints) != len(hints):
            out.at(tdoc, "hints", f"a translation must give the same number of hints as the original ({len(hints)})")
            thints = hints
        tquestions = questions
        if "questions" in tdoc.meta and questions:
            tquestions = _translated_questions(tdoc, out, tdoc.meta["questions"], questions)
        translations[language] = StepText(
            title=str(tdoc.meta.get("title", text.title)),
            body_html=render_markdown(tdoc.body) if tdoc.body.strip() else text.body_html,
            hints=tuple(render_inline(h) for h in thints),
            questions=tquestions,
            **_feedback_rules(tdoc, out, check),
        )
    step = Step(
        slug=match.group("slug"),
        number=int(match.group("number")),
        type=step_type if step_type in STEP_TYPES else "task",
        check=check,
        solution=solution,
        setup=setup,
        timeout=timeout,
        path=path,
        text=text,
        translations=translations,
    )
    return step, doc


def _feedback_rules(doc: Document, out: _Collector, check: str) -> dict[str, tuple]:
    """A translation's ``feedback:`` mapping (check message -> translation), compiled."""
    raw = doc.meta.get("feedback")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(_is_text(k) and _is_text(v) for k, v in raw.items()):
        out.at(doc, "feedback", "'feedback' must map each message the check prints to its translation")
        return {}
    if not check:
        out.at(doc, "feedback", "'feedback' translates a check's messages, and this step has no check")
        return {}
    rules = []
    printed = {shape(m) for m in check_messages(check)}
    for key, value in raw.items():
        try:
            rules.append(compile_rule(str(key).strip(), str(value).strip()))
        except FeedbackError as exc:
            out.at(doc, "feedback", str(exc))
            continue
        if shape(str(key)) not in printed:
            out.at(doc, "feedback", f"the check never prints {str(key).strip()!r} (write a message as its echo prints it, with {{name}} for each part that varies)")
    return {"feedback": tuple(rules), "feedback_keys": tuple(str(k).strip() for k in raw)}


def translation_gaps(lesson: Lesson, languages: set[str] | None = None) -> list[Problem]:
    """What the lesson lacks in each site language: files, quiz feedback, check messages.
    Not errors (the original is shown instead); ``check_lessons`` lists them, ``--strict`` fails."""
    gaps: list[Problem] = []
    for language in sorted(languages if languages is not None else _site_languages()):
        if language not in lesson.translations:
            gaps.append(Problem(lesson.path / f"lesson.{language}.md", 1, f"the lesson has no {language} translation"))
        for step in lesson.steps:
            tpath = step.path.with_name(f"{step.path.stem}.{language}.md")
            translated = step.translations.get(language)
            if translated is None:
                gaps.append(Problem(tpath, 1, f"the step has no {language} translation"))
                continue
            for number, (original, question) in enumerate(zip(step.text.questions, translated.questions), start=1):
                for choice, why, twhy in zip(original.choices, original.whys, question.whys):
                    if why and twhy == why:
                        gaps.append(Problem(tpath, 1, f"question {number}: the 'why' of choice {choice!r} is not translated"))
            done = {shape(key) for key in translated.feedback_keys}
            for message in check_messages(step.check):
                if shape(message) not in done:
                    gaps.append(Problem(tpath, 1, f"check message not translated (feedback:): {message}"))
    return gaps


def _site_languages() -> set[str]:
    return {code.lower() for code, _name in getattr(settings, "LANGUAGES", [])} - {settings.LANGUAGE_CODE.lower()}


def _load_lesson(folder: Path, out: _Collector) -> tuple[Lesson | None, Document | None, list[Document]]:
    """Load one folder; problems go to ``out``. Returns the lesson and its documents for link checks."""
    path = folder / "lesson.md"
    doc = _read(path, out)
    if doc is None:
        return None, None, []
    meta = doc.meta
    if not SLUG_RE.match(folder.name):
        out.add(path, 1, f"the folder name {folder.name!r} is the lesson's slug: use lowercase letters, digits and dashes")
    for key in sorted(set(meta) - set(LESSON_KEYS)):
        out.at(doc, key, f"unknown key '{key}' (known: {', '.join(LESSON_KEYS)})")
    for key, need in LESSON_KEYS.items():
        if need == "required" and key not in meta:
            out.add(path, 1, f"'{key}' is required in the front matter")
    for key in ("title", "summary"):
        if key in meta and not _is_text(meta[key]):
            out.at(doc, key, f"'{key}' must be text")
    workspace = meta.get("workspace", "plain")
    if workspace not in WORKSPACES:
        out.at(doc, "workspace", f"'workspace' must be one of {', '.join(WORKSPACES)}, not {workspace!r}")
    image = meta.get("image", "base")
    images = known_images()
    if not isinstance(image, str) or image not in images:
        out.at(doc, "image", f"unknown image {image!r} (known: {', '.join(sorted(images))}; add one with LESSON_EXTRA_IMAGES)")
    minutes = meta.get("minutes", 10)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        out.at(doc, "minutes", "'minutes' must be a positive whole number")
        minutes = 10
    order = meta.get("order", 100)
    if isinstance(order, bool) or not isinstance(order, int):
        out.at(doc, "order", "'order' must be a whole number")
        order = 100
    prerequisites = meta.get("prerequisites", [])
    if not isinstance(prerequisites, list) or not all(isinstance(p, str) for p in prerequisites):
        out.at(doc, "prerequisites", "'prerequisites' must be a list of lesson slugs")
        prerequisites = []
    sandbox_limits: list[tuple[str, int]] = []
    raw_limits = meta.get("sandbox", {})
    if not isinstance(raw_limits, dict):
        out.at(doc, "sandbox", f"'sandbox' must be a mapping of limits ({', '.join(SANDBOX_LIMIT_KEYS)})")
        raw_limits = {}
    for key, value in raw_limits.items():
        if key not in SANDBOX_LIMIT_KEYS:
            out.at(doc, "sandbox", f"unknown sandbox limit {key!r} (known: {', '.join(SANDBOX_LIMIT_KEYS)})")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            unit = "a count" if key == "max_extensions" else "seconds"
            out.at(doc, "sandbox", f"sandbox limit {key!r} must be a whole number >= 0 ({unit})")
        else:
            sandbox_limits.append((key, value))
    learned = meta.get("learned", [])
    if not _string_list(learned):
        out.at(doc, "learned", "'learned' must be a list of texts (what the learner can do afterwards)")
        learned = []

    languages = _site_languages()
    steps_dir = folder / "steps"
    steps: list[Step] = []
    step_docs: list[Document] = []
    if not steps_dir.is_dir():
        out.add(path, 1, f"no steps: add step files to {steps_dir}")
    else:
        seen_numbers: dict[int, Path] = {}
        seen_slugs: dict[str, Path] = {}
        for step_path in sorted(steps_dir.iterdir()):
            if step_path.suffix != ".md":
                continue
            match = STEP_FILE_RE.match(step_path.name)
            if not match:
                tmatch = STEP_TRANSLATION_RE.match(step_path.name)
                if tmatch:
                    if tmatch.group("lang") not in languages:
                        out.add(step_path, 1, f"translation into {tmatch.group('lang')!r}, which is not in LANGUAGES")
                    elif not (steps_dir / f"{tmatch.group('stem')}.md").is_file():
                        out.add(step_path, 1, f"translation of a step that does not exist: {tmatch.group('stem')}.md")
                    continue
                out.add(step_path, 1, "step files are named NN-slug.md (e.g. 01-look-at-pid-1.md)")
                continue
            number, slug = int(match.group("number")), match.group("slug")
            if number in seen_numbers:
                out.add(step_path, 1, f"duplicate step number {number:02d} (also {seen_numbers[number].name})")
            if slug in seen_slugs:
                out.add(step_path, 1, f"duplicate step slug {slug!r} (also {seen_slugs[slug].name})")
            seen_numbers.setdefault(number, step_path)
            seen_slugs.setdefault(slug, step_path)
            loaded = _load_step(step_path, match, out, languages)
            if loaded is not None:
                step, step_doc = loaded
                steps.append(step)
                step_docs.append(step_doc)
        if not seen_numbers:
            out.add(path, 1, f"no steps: add step files to {steps_dir}")

    text = LessonText(
        title=str(meta.get("title", folder.name)),
        summary=str(meta.get("summary", "")),
        body_html=render_markdown(doc.body),
        learned=tuple(render_inline(item) for item in learned),
    )
    translations: dict[str, LessonText] = {}
    for candidate in sorted(folder.glob("lesson.*.md")):
        tmatch = LESSON_TRANSLATION_RE.match(candidate.name)
        if not tmatch or tmatch.group("lang") not in languages:
            out.add(candidate, 1, f"translation into {tmatch.group('lang') if tmatch else '?'!r}, which is not in LANGUAGES")
            continue
        tdoc = _read(candidate, out)
        if tdoc is None:
            continue
        for key in sorted(set(tdoc.meta) - LESSON_TRANSLATABLE_KEYS):
            out.at(tdoc, key, f"a translation may only set {', '.join(sorted(LESSON_TRANSLATABLE_KEYS))}; '{key}' comes from the original")
        tlearned = tdoc.meta.get("learned", learned)
        if not _string_list(tlearned):
            out.at(tdoc, "learned", "'learned' must be a list of texts")
            tlearned = learned
        translations[tmatch.group("lang")] = LessonText(
            title=str(tdoc.meta.get("title", text.title)),
            summary=str(tdoc.meta.get("summary", text.summary)),
            body_html=render_markdown(tdoc.body) if tdoc.body.strip() else text.body_html,
            learned=tuple(render_inline(item) for item in tlearned),
        )
        step_docs.append(tdoc)

    lesson = Lesson(
        slug=folder.name,
        workspace=workspace if workspace in WORKSPACES else "plain",
        image=image if isinstance(image, str) else "base",
        minutes=minutes,
        order=order,
        prerequisites=tuple(prerequisites),
        path=folder,
        text=text,
        sandbox_limits=tuple(sandbox_limits),
        steps=tuple(sorted(steps, key=lambda s: s.number)),
        translations=translations,
    )
    return lesson, doc, step_docs


def lesson_folders(dirs: list[Path]) -> list[Path]:
    folders = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        folders += sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return folders


def load_dirs(dirs: list[Path]) -> tuple[list[Lesson], list[Problem]]:
    """Load and validate every lesson folder under ``dirs``.

    Returns the lessons that have no problems (sorted by order, then slug) and every problem found.
    """
    out = _Collector()
    loaded: list[tuple[Lesson, Document, list[Document], int]] = []
    for folder in lesson_folders(dirs):
        if not (folder / "lesson.md").is_file():
            # Translations-only or stray folders are reported; a folder must hold lesson.md.
            out.add(folder / "lesson.md", 1, "a lesson folder needs a lesson.md")
            continue
        before = len(out.problems)
        lesson, doc, docs = _load_lesson(folder, out)
        if lesson is not None and doc is not None:
            loaded.append((lesson, doc, docs, before))

    # Cross-lesson rules: duplicate slugs and orders, prerequisites and links that lead nowhere.
    by_slug: dict[str, Lesson] = {}
    by_order: dict[int, Lesson] = {}
    steps_of = {lesson.slug: {s.slug for s in lesson.steps} for lesson, *_ in loaded}
    broken: set[Path] = set()
    for lesson, doc, docs, _ in loaded:
        if lesson.slug in by_slug:
            out.add(doc.path, 1, f"duplicate lesson slug {lesson.slug!r} (also {by_slug[lesson.slug].path / 'lesson.md'})")
            broken.add(lesson.path)
        else:
            by_slug[lesson.slug] = lesson
        if lesson.order in by_order and by_order[lesson.order].slug != lesson.slug:
            out.at(doc, "order", f"duplicate order {lesson.order} (also {by_order[lesson.order].path / 'lesson.md'})")
            broken.add(lesson.path)
        else:
            by_order.setdefault(lesson.order, lesson)
        for prerequisite in lesson.prerequisites:
            if prerequisite not in steps_of:
                out.at(doc, "prerequisites", f"prerequisite {prerequisite!r} is not a lesson")
            elif prerequisite == lesson.slug:
                out.at(doc, "prerequisites", "a lesson cannot be its own prerequisite")
        for document in [doc, *docs]:
            _lesson_links(document, out, steps_of)

    problem_paths = {p.path for p in out.problems}
    good = []
    for lesson, *_ in loaded:
        if lesson.path in broken or any(lesson.path == p or lesson.path in p.parents for p in problem_paths):
            continue
        good.append(lesson)
    return sorted(good, key=lambda lesson: (lesson.order, lesson.slug)), out.problems


def validate_dirs(dirs: list[Path] | None = None) -> list[Problem]:
    """Every problem in every lesson folder (the configured ones by default)."""
    return load_dirs(dirs if dirs is not None else lesson_dirs())[1]
