"""Import a scenario, a course (Killercoda ``structure.json`` or a Katacoda pathway) or a zip of
any of them into lesson folders, each with IMPORT_REPORT.md and the upstream licence beside it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from .mapper import Draft, map_scenario, report_text
from .reader import PATHWAY_SUFFIX, Course, Scenario, opened, read_listing, read_pathway, read_scenario

REPORT_NAME = "IMPORT_REPORT.md"


@dataclasses.dataclass(frozen=True)
class Imported:
    folder: Path
    draft: Draft
    variant: str


def _write(draft: Draft, scenario: Scenario, into: Path, *, replace: bool) -> Path:
    folder = into / draft.slug
    if folder.exists():
        if not replace:
            raise FileExistsError(f"{folder} exists (use --replace to overwrite it)")
        shutil.rmtree(folder)
    if draft.license is not None:
        draft.report.add(draft.license.name, 1, "mapped", f"licence {draft.license.name} copied beside the lesson")
    else:
        draft.report.add("index.json", 1, "warning", "no LICENSE (or COPYING) in the scenario or its parent folders: check that you may reuse it")
    for name, text in draft.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if draft.license is not None:
        shutil.copyfile(draft.license, folder / draft.license.name)
    (folder / REPORT_NAME).write_text(report_text(draft, scenario.variant), encoding="utf-8")
    return folder


# What a pathway says about itself, which no lesson holds: the catalogue has no pathways, and each
# of its courses becomes a lesson with the one before as its prerequisite.
PATHWAY_KEYS_REPORTED = {
    "title": "the pathway's title",
    "description": "the pathway's description",
}


def _course_notes(course: Course, draft: Draft, scenario: Scenario) -> None:
    text = course.structure_text
    for key, value in course.structure.items():
        if key == course.items_key:
            continue
        line = text.count("\n", 0, max(text.find(f'"{key}"'), 0)) + 1
        if key in PATHWAY_KEYS_REPORTED and course.file != "structure.json":
            draft.report.add(course.file, line, "reported", f"{PATHWAY_KEYS_REPORTED[key]} {str(value)[:80]!r}: not mapped (no pathways in the catalogue; its courses are lessons in order, each the next one's prerequisite)")
        else:
            draft.report.add(course.file, line, "reported", f"unknown key {key!r} in {course.file}: not mapped")
    for path, line in course.missing:
        draft.report.add(course.file, line, "reported", f"course item {path} is named but has no index.json: not imported")
    items = course.structure.get(course.items_key) or []
    item = next((i for i in items if course.item_folder(i) and (course.root / course.item_folder(i)).resolve() == scenario.root.resolve()), {})
    folder = course.item_folder(item)
    for key in item:
        if key in course.folder_keys and item[key] != folder:
            line = text.count("\n", 0, max(text.find(f'"{item[key]}"'), 0)) + 1
            draft.report.add(course.file, line, "reported", f"course item key {key!r} ({item[key]!r}) differs from the folder {folder} used: not mapped")
        elif key not in course.folder_keys:
            line = text.count("\n", 0, max(text.find(f'"{folder}"'), 0)) + 1
            draft.report.add(course.file, line, "reported", f"course item key {key!r} for {folder}: not mapped")


def _import_course(course: Course, into: Path, *, order: int, replace: bool) -> list[Imported]:
    results: list[Imported] = []
    previous: tuple[str, ...] = ()
    for position, scenario in enumerate(course.scenarios):
        draft = map_scenario(scenario, order=order + position, prerequisites=previous)
        _course_notes(course, draft, scenario)
        results.append(Imported(_write(draft, scenario, into, replace=replace), draft, scenario.variant))
        previous = (draft.slug,)
    return results


def import_path(path: Path, into: Path, *, order: int = 1000, replace: bool = False) -> list[Imported]:
    """Import everything at ``path`` into ``into``; lessons of a course get consecutive orders from
    ``order`` and each the one before as its prerequisite. ``path`` may also be a pathway file."""
    into.mkdir(parents=True, exist_ok=True)
    path = Path(path)
    if path.is_file() and path.name.endswith(PATHWAY_SUFFIX):
        return _import_course(read_pathway(path, path.parent), into, order=order, replace=replace)
    with opened(path) as folder:
        top = folder
        if (folder / "index.json").is_file():
            scenario = read_scenario(folder, top)
            draft = map_scenario(scenario, order=order)
            return [Imported(_write(draft, scenario, into, replace=replace), draft, scenario.variant)]
        return _import_course(read_listing(folder, top), into, order=order, replace=replace)
