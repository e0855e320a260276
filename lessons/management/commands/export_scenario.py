"""``manage.py export_scenario LESSON [--into DIR]``: a lesson (slug or folder) -> a Killercoda
scenario folder with EXPORT_REPORT.md naming what does not map."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.loader import lesson_dirs, lesson_folders
from lessons.scenarios.exporter import REPORT_NAME, export_lesson


class Command(BaseCommand):
    help = "Export a lesson as a Killercoda scenario (index.json, Markdown, verify and background scripts)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("lesson", help="A lesson slug, or the path of a lesson folder.")
        parser.add_argument("--into", type=Path, default=Path("exported-scenarios"), help="Folder to write the scenario folder into.")
        parser.add_argument("--replace", action="store_true", help="Overwrite a scenario folder that exists.")

    def handle(self, *args, lesson: str, into: Path, replace: bool, **options) -> None:
        folder = Path(lesson)
        if not (folder / "lesson.md").is_file():
            folder = next((f for f in lesson_folders(lesson_dirs()) if f.name == lesson), None)
            if folder is None:
                raise CommandError(f"{lesson}: no such lesson (give a slug or a lesson folder)")
        try:
            result = export_lesson(folder, into, replace=replace)
        except (FileExistsError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{result.report.count(kind)} {kind}" for kind in ("mapped", "reported", "warning"))
        self.stdout.write(f"{result.folder}: {counts}; see {result.folder / REPORT_NAME}")
