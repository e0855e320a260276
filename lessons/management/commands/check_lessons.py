"""``manage.py check_lessons``: validate every lesson folder; each problem names its file and line."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.content_loader import lesson_dirs, load_dirs


class Command(BaseCommand):
    help = "Validate every lesson (schema, unknown keys, scripts, images, duplicates, links). Exit 1 on any problem."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "dirs",
            nargs="*",
            type=Path,
            help="Folders holding lesson folders (default: lessons/content and every LESSON_DIRS entry).",
        )

    def handle(self, *args, dirs: list[Path], **options) -> None:
        folders = dirs or lesson_dirs()
        for folder in folders:
            if not folder.is_dir():
                raise CommandError(f"{folder}: no such folder of lessons")
        lessons, problems = load_dirs(list(folders))
        for problem in problems:
            self.stderr.write(str(problem))
        steps = sum(len(lesson.steps) for lesson in lessons)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found; {len(lessons)} lesson(s) are valid")
        self.stdout.write(f"{len(lessons)} lessons, {steps} steps: all valid")
