"""Import a scenario, a course or a zip of either into lesson folders, each with IMPORT_REPORT.md
and the upstream licence beside it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from .mapper import Draft, map_scenario, report_text
from .reader import Course, Scenario, opened, read_course, read_scenario

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


def _course_notes(course: Course, draft: Draft, scenario: Scenario) -> None:
    for key in course.structure:
        if key != "items":
            draft.report.add("structure.json", 1, "reported", f"unknown key {key!r} in structure.json: not mapped")
    for path, line in course.missing:
        draft.report.add("structure.json", line, "reported", f"course item {path} is named but has no index.json: not imported")
    item = next((i for i in course.structure.get("items", []) if isinstance(i, dict) and (course.root / str(i.get("path"))).resolve() == scenario.root.resolve()), {})
    for key in item:
        if key != "path":
            draft.report.add("structure.json", 1, "reported", f"course item key {key!r} for {item.get('path')}: not mapped")


def import_path(path: Path, into: Path, *, order: int = 1000, replace: bool = False) -> list[Imported]:
    """Import everything at ``path`` into ``into``; lessons of a course get consecutive orders from
    ``order`` and each the one before as its prerequisite."""
    into.mkdir(parents=True, exist_ok=True)
    results: list[Imported] = []
    with opened(Path(path)) as folder:
        top = folder
        if (folder / "index.json").is_file():
            scenario = read_scenario(folder, top)
            draft = map_scenario(scenario, order=order)
            results.append(Imported(_write(draft, scenario, into, replace=replace), draft, scenario.variant))
            return results
        course = read_course(folder, top)
        previous: tuple[str, ...] = ()
        for position, scenario in enumerate(course.scenarios):
            draft = map_scenario(scenario, order=order + position, prerequisites=previous)
            _course_notes(course, draft, scenario)
            results.append(Imported(_write(draft, scenario, into, replace=replace), draft, scenario.variant))
            previous = (draft.slug,)
    return results
