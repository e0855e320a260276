"""``manage.py check_lessons``: validate every lesson folder; each problem names its file and line.

Missing translations (a lesson or step without a file in a site language, an untranslated quiz
``why`` or check message) are warnings, listed after the problems; ``--strict`` makes them errors.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.loader import lesson_dirs, load_dirs, translation_gaps


class Command(BaseCommand):
    help = ("Validate every lesson (schema, unknown keys, scripts, images, duplicates, links). Exit 1 on any problem. "
            "Untranslated lessons, steps, quiz feedback and check messages are listed as warnings (errors with --strict).")

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "dirs",
            nargs="*",
            type=Path,
            help="Folders holding lesson folders (default: lessons/content and every LESSON_DIRS entry).",
        )
        parser.add_argument("--strict", action="store_true", help="Fail on anything not translated, too.")

    def handle(self, *args, dirs: list[Path], strict: bool = False, **options) -> None:
        folders = dirs or lesson_dirs()
        for folder in folders:
            if not folder.is_dir():
                raise CommandError(f"{folder}: no such folder of lessons")
        lessons, problems = load_dirs(list(folders))
        for problem in problems:
            self.stderr.write(str(problem))
        gaps = [gap for lesson in lessons for gap in translation_gaps(lesson)]
        for gap in gaps:
            self.stderr.write(f"{gap} ({'error' if strict else 'warning'})")
        steps = sum(len(lesson.steps) for lesson in lessons)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found; {len(lessons)} lesson(s) are valid")
        if gaps and strict:
            raise CommandError(f"{len(gaps)} translation gap(s) found (--strict)")
        warned = f"; {len(gaps)} translation warning(s)" if gaps else ""
        self.stdout.write(f"{len(lessons)} lessons, {steps} steps: all valid{warned}")
