"""``manage.py import_scenario PATH [--into DIR]``: a Killercoda/Katacoda scenario, course, pathway or zip
-> lesson folders, each with IMPORT_REPORT.md, then validated like ``check_lessons``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.loader import lesson_dirs, load_dirs
from lessons.scenarios.importer import REPORT_NAME, import_path
from lessons.scenarios.reader import ScenarioError


class Command(BaseCommand):
    help = "Import a Killercoda or Katacoda scenario (a folder with index.json, a course with structure.json, a Katacoda *-pathway.json, or a zip)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="Scenario folder, course folder, pathway file (or a folder with one), or zip of any of them.")
        parser.add_argument("--into", type=Path, default=None, help="Folder to write lesson folders into (default: the first LESSON_DIRS entry).")
        parser.add_argument("--order", type=int, default=1000, help="Catalogue order of the (first) imported lesson (default 1000).")
        parser.add_argument("--replace", action="store_true", help="Overwrite lesson folders that exist.")

    def handle(self, *args, path: Path, into: Path | None, order: int, replace: bool, **options) -> None:
        if into is None:
            configured = lesson_dirs()[1:]
            if not configured:
                raise CommandError("give --into DIR (or set TUTORIAL_LESSON_DIRS): imported lessons go to a folder of your lessons")
            into = configured[0]
        try:
            imported = import_path(path, into, order=order, replace=replace)
        except (ScenarioError, FileExistsError) as exc:
            raise CommandError(str(exc)) from None
        folders = {result.folder.resolve() for result in imported}
        dirs = list(dict.fromkeys([*lesson_dirs(), into]))
        _lessons, problems = load_dirs(dirs)
        ours = [p for p in problems if any(folder == p.path.resolve() or folder in p.path.resolve().parents for folder in folders)]
        for result in imported:
            report = result.draft.report
            counts = ", ".join(f"{report.count(kind)} {kind}" for kind in ("mapped", "rewritten", "reported", "cannot-run", "warning"))
            self.stdout.write(f"{result.folder}: {len(result.draft.files) - 1} step(s), {result.draft.workspace} ({result.variant}); {counts}; see {result.folder / REPORT_NAME}")
        for problem in ours:
            self.stderr.write(str(problem))
        if ours:
            raise CommandError(f"{len(ours)} problem(s) in the imported lesson(s): fix them before serving")
