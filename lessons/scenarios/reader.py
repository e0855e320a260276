"""Read Killercoda and Katacoda scenarios: a folder with ``index.json``, a course folder with
``structure.json`` (``{"items": [{"path": "scenario-folder"}, ...]}``), a Katacoda pathway
(``NAME-pathway.json`` beside the scenario folders: ``{"title", "description", "courses":
[{"course_id": "scenario-folder", "title", ...}, ...]}``), or a zip of any of them.

Files a scenario names are read relative to its folder and never outside it (a ``../`` name, an
absolute name or a symlink leading out is treated as missing). A zip is unpacked into a temporary
folder with the same rule for its members, and a bound on its size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

MAX_ZIP_BYTES = 50 * 1024 * 1024
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "COPYING", "COPYING.md")
# Keys that only Katacoda wrote; their presence names the variant in the report.
KATACODA_TOP_KEYS = {"pathwayTitle", "environment", "difficulty", "time", "files", "private", "icon"}
KATACODA_STEP_KEYS = {"courseData", "code", "answer"}


class ScenarioError(ValueError):
    """Not a scenario (or a course of them); the message says what was expected."""


@dataclasses.dataclass
class Scenario:
    root: Path  # the scenario's folder
    name: str  # its folder name
    index_text: str
    index: dict
    variant: str  # "killercoda" or "katacoda"
    license: Path | None  # the nearest licence file, in the folder or a parent inside the source
    course_position: int = 0  # 1, 2, ... within a course; 0 alone

    def read(self, name: str) -> str | None:
        """A file the scenario names, as text; None when missing, outside the folder or not text."""
        path = self.resolve(name)
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return None

    def resolve(self, name: str) -> Path | None:
        if not isinstance(name, str) or not name.strip() or name.startswith("/"):
            return None
        path = (self.root / name).resolve()
        root = self.root.resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path


def _variant(index: dict) -> str:
    if KATACODA_TOP_KEYS & set(index):
        return "katacoda"
    details = index.get("details") if isinstance(index.get("details"), dict) else {}
    parts = [details.get("intro"), details.get("finish"), *(details.get("steps") or [])]
    if any(isinstance(p, dict) and KATACODA_STEP_KEYS & set(p) for p in parts):
        return "katacoda"
    return "killercoda"


def _license(folder: Path, top: Path) -> Path | None:
    folder, top = folder.resolve(), top.resolve()
    while True:
        for name in LICENSE_NAMES:
            if (folder / name).is_file():
                return folder / name
        if folder == top or top not in folder.parents:
            return None
        folder = folder.parent


def _load_json(path: Path) -> tuple[str, dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: expected a JSON object")
    return text, data


def read_scenario(folder: Path, top: Path, position: int = 0) -> Scenario:
    text, index = _load_json(folder / "index.json")
    return Scenario(folder, folder.name, text, index, _variant(index), _license(folder, top), position)


PATHWAY_SUFFIX = "pathway.json"
# How a Katacoda pathway names a scenario folder: `course_id`, or `id` in older files.
PATHWAY_FOLDER_KEYS = ("course_id", "id")


@dataclasses.dataclass
class Course:
    """Scenarios in order, from a Killercoda ``structure.json`` or a Katacoda pathway file."""

    root: Path
    structure_text: str
    structure: dict
    scenarios: list[Scenario]
    missing: list[tuple[str, int]]  # (item path, line in the listing file)
    file: str = "structure.json"  # the listing file's name, for the report
    items_key: str = "items"  # its key holding the list
    folder_keys: tuple[str, ...] = ("path",)  # an item's keys naming the scenario folder

    def item_folder(self, item) -> str | None:
        if not isinstance(item, dict):
            return None
        return next((item[key] for key in self.folder_keys if isinstance(item.get(key), str)), None)


def _read_items(course: Course, top: Path) -> Course:
    folder = course.root
    for item in course.structure.get(course.items_key) or []:
        path = course.item_folder(item)
        line = course.structure_text.count("\n", 0, max(course.structure_text.find(f'"{path}"'), 0)) + 1
        target = (folder / path).resolve() if path else None
        if target is None or folder.resolve() not in target.parents or not (target / "index.json").is_file():
            course.missing.append((str(path), line))
            continue
        course.scenarios.append(read_scenario(target, top, len(course.scenarios) + 1))
    return course


def read_course(folder: Path, top: Path) -> Course:
    text, structure = _load_json(folder / "structure.json")
    if not isinstance(structure.get("items"), list):
        raise ScenarioError(f"{folder / 'structure.json'}:1: expected \"items\": a list of {{\"path\": folder}}")
    return _read_items(Course(folder, text, structure, [], []), top)


def pathway_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(PATHWAY_SUFFIX))


def read_pathway(path: Path, top: Path) -> Course:
    """A Katacoda pathway: its courses are the scenario folders beside the file, in its order."""
    text, pathway = _load_json(path)
    if not isinstance(pathway.get("courses"), list):
        raise ScenarioError(f"{path}:1: expected \"courses\": a list of {{\"course_id\": folder}}")
    course = Course(path.parent, text, pathway, [], [], file=path.name, items_key="courses", folder_keys=PATHWAY_FOLDER_KEYS)
    return _read_items(course, top)


def read_listing(folder: Path, top: Path) -> Course:
    """The course in ``folder``: its ``structure.json``, or its one pathway file."""
    if (folder / "structure.json").is_file():
        return read_course(folder, top)
    pathways = pathway_files(folder)
    if len(pathways) == 1:
        return read_pathway(pathways[0], top)
    if pathways:
        raise ScenarioError(f"{folder}: several pathways here ({', '.join(p.name for p in pathways)}): import one of them by its file")
    raise ScenarioError(f"{folder}: no index.json (a scenario), structure.json (a course) or *-{PATHWAY_SUFFIX} (a pathway) here")


def _unzip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        total = 0
        for member in zipped.infolist():
            total += member.file_size
            if total > MAX_ZIP_BYTES:
                raise ScenarioError(f"{archive}: unpacks to more than {MAX_ZIP_BYTES // (1024 * 1024)} MiB")
            target = (into / member.filename).resolve()
            if into.resolve() not in target.parents and target != into.resolve():
                raise ScenarioError(f"{archive}: member {member.filename!r} would land outside the folder")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Path]:
    """The folder to read: ``path`` itself, or a zip unpacked for as long as the block lasts.
    A folder (or zip) holding exactly one folder with the scenario is looked into."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="scenario-") as temporary:
            _unzip(path, Path(temporary))
            yield _descend(Path(temporary))
        return
    if not path.is_dir():
        raise ScenarioError(f"{path}: not a folder or a zip")
    yield _descend(path)


def _descend(folder: Path) -> Path:
    if (folder / "index.json").is_file() or (folder / "structure.json").is_file() or pathway_files(folder):
        return folder
    children = [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith((".", "__"))]
    if len(children) == 1:
        return _descend(children[0])
    raise ScenarioError(f"{folder}: no index.json (a scenario), structure.json (a course) or *-{PATHWAY_SUFFIX} (a pathway) here")
