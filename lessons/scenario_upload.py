"""An instructor's scenario zip, from the upload page into a folder of lessons.

The steps, each in a temporary folder until the last: unpack the zip with the bounds of
:mod:`lessons.scenarios.archive`; run the importer (:func:`~lessons.scenarios.importer.import_path`)
into a temporary output; validate the new lessons with the loader against every other lesson of
the site, as ``check_lessons`` does (duplicate slugs and orders, prerequisites, links); only when
nothing is wrong, move each new lesson folder into the chosen ``LESSON_DIRS`` folder and clear the
catalogue's cache. A refused or invalid upload writes nothing there.

The destination is one of the ``LESSON_DIRS`` entries that exists and this process may write,
never the built-in ``lessons/content``. An existing lesson folder is replaced only when asked.

Each process keeps the lessons it serves (``lessons.catalogue.all_lessons``):
:func:`~lessons.catalogue.clear_cache` makes this process list the new lesson at once; other
processes (a second site process, the reaper) see the changed folder within
``catalogue.RESCAN_SECONDS``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

from .catalogue import all_lessons, clear_cache
from .loader import CONTENT_DIR, lesson_dirs, lesson_folders, load_dirs
from .scenarios.archive import ArchiveRefused, unpack
from .scenarios.importer import REPORT_NAME, import_path
from .scenarios.report import KINDS, Item
from .scenarios.reader import ScenarioError

log = logging.getLogger(__name__)

FIRST_IMPORTED_ORDER = 1000


class UploadRefused(ValueError):
    """Nothing was imported; the message (translated) is shown to the instructor."""


@dataclasses.dataclass(frozen=True)
class ImportedLesson:
    slug: str
    title: str
    workspace: str
    items: tuple[Item, ...]  # the lines of its IMPORT_REPORT.md

    @property
    def counts(self) -> tuple[tuple[str, int], ...]:
        return tuple((kind, sum(1 for item in self.items if item.kind == kind)) for kind in KINDS)


@dataclasses.dataclass(frozen=True)
class Outcome:
    installed: bool
    into: Path
    lessons: tuple[ImportedLesson, ...]
    problems: tuple[str, ...] = ()  # "slug/file:line: message", when the new lessons do not validate


# --- Where lessons may go ----------------------------------------------------------------------


def _is_builtin(folder: Path) -> bool:
    builtin = CONTENT_DIR.resolve()
    return folder == builtin or builtin in folder.parents or folder in builtin.parents


def configured_dirs() -> list[Path]:
    """The ``LESSON_DIRS`` entries (the built-in lessons/content is not one)."""
    return [Path(p) for p in getattr(settings, "LESSON_DIRS", []) or []]


def writable_dirs() -> list[Path]:
    """The ``LESSON_DIRS`` folders an upload may go to: existing, writable by this process, and
    neither the built-in lessons nor a folder holding them."""
    found = []
    for folder in configured_dirs():
        resolved = folder.resolve()
        if resolved.is_dir() and os.access(resolved, os.W_OK | os.X_OK) and not _is_builtin(resolved):
            found.append(folder)
    return found


def next_free_order() -> int:
    """An order after every lesson's, so that a course's consecutive orders are free too."""
    orders = [lesson.order for lesson in all_lessons()]
    return max([FIRST_IMPORTED_ORDER - 1, *orders]) + 1


# --- The import --------------------------------------------------------------------------------


def _lesson_of(draft) -> ImportedLesson:
    return ImportedLesson(draft.slug, draft.title, draft.workspace, tuple(draft.report.items))


def _name_the_source(report: Path, unpacked: Path, upload_name: str) -> None:
    """The report names where the scenario came from: the upload, not a temporary folder."""
    text = report.read_text(encoding="utf-8")
    report.write_text(text.replace(str(unpacked), upload_name), encoding="utf-8")


def _validation_view(view: Path, into: Path, replaced: set[str]) -> Path:
    """``into`` as it will be, less the folders the import replaces: links to its other lesson
    folders (the loader follows them), so that the checks across lessons see the site as it will be."""
    view.mkdir()
    for folder in lesson_folders([into]):
        if folder.name not in replaced:
            (view / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return view


def _problems(out: Path, new: list[Path], into: Path, replaced: set[str]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="lesson-view-") as temporary:
        view = _validation_view(Path(temporary) / "view", into, replaced)
        others = [d for d in lesson_dirs() if d.resolve() != into.resolve()]
        # The new lessons come last, so that a duplicate slug or order is reported on them.
        _lessons, problems = load_dirs([*others, view, out])
        ours = []
        for problem in problems:
            path = problem.path.resolve()
            if any(folder == path or folder in path.parents for folder in new):
                message = problem.message.replace(str(out) + os.sep, "").replace(str(view), str(into))
                ours.append(f"{path.relative_to(out)}:{problem.line}: {message}")
    return ours


def _install(out: Path, slugs: list[str], into: Path, replaced: set[str]) -> None:
    """Move each new lesson folder into ``into``: copied beside its place under a hidden name (the
    loader skips names starting with '.'), then renamed into place, the replaced one moved aside first."""
    # Another upload may have taken a name since it was checked: never replace what was not asked.
    taken = [slug for slug in slugs if slug not in replaced and ((into / slug).exists() or (into / slug).is_symlink())]
    if taken:
        raise UploadRefused(_("A lesson folder of this name appeared meanwhile: %(slugs)s.") % {"slugs": ", ".join(taken)})
    for slug in slugs:
        incoming = Path(tempfile.mkdtemp(prefix=f".incoming-{slug}-", dir=into))
        staged = incoming / slug
        shutil.copytree(out / slug, staged)
        target = into / slug
        if slug in replaced and (target.exists() or target.is_symlink()):
            target.rename(incoming / "replaced")
        staged.rename(target)
        shutil.rmtree(incoming, ignore_errors=True)


def import_upload(upload: BinaryIO, upload_name: str, size: int, into: Path, *, order: int, replace: bool) -> Outcome:
    """Import the uploaded zip into ``into`` (one of :func:`writable_dirs`). Raises
    :class:`UploadRefused` when nothing could be imported; an :class:`Outcome` otherwise, with
    ``installed`` false (and the problems) when the new lessons do not validate."""
    if not any(Path(into).resolve() == d.resolve() for d in writable_dirs()):
        raise UploadRefused(_("That folder is not one of the lesson folders this site may write."))
    into = Path(into)
    if size > settings.SCENARIO_UPLOAD_MAX_BYTES:
        raise UploadRefused(_("The zip is larger than %(max)s bytes.") % {"max": settings.SCENARIO_UPLOAD_MAX_BYTES})
    with tempfile.TemporaryDirectory(prefix="scenario-upload-") as temporary:
        unpacked = Path(temporary) / "unpacked"
        out = Path(temporary) / "lessons"
        unpacked.mkdir()
        try:
            unpack(upload, unpacked, max_files=settings.SCENARIO_UPLOAD_MAX_FILES,
                   max_bytes=settings.SCENARIO_UPLOAD_MAX_UNPACKED_BYTES)
        except ArchiveRefused as exc:
            raise UploadRefused(_("The zip is refused: %(reason)s.") % {"reason": exc}) from None
        try:
            imported = import_path(unpacked, out, order=order)
        except ScenarioError as exc:
            raise UploadRefused(_("This is not a scenario: %(reason)s") % {"reason": str(exc).replace(str(unpacked), upload_name)}) from None
        except Exception:
            # Untrusted input into a converter: whatever it trips on is the scenario's fault
            # as far as the instructor can tell, and the site stays up.
            log.exception("scenario import failed on an upload")
            raise UploadRefused(_("The importer could not read this scenario (the server log has the details).")) from None
        if not imported:
            raise UploadRefused(_("The course names no scenario that has an index.json."))
        slugs = [result.folder.name for result in imported]
        for result in imported:
            _name_the_source(result.folder / REPORT_NAME, unpacked, upload_name)
        lessons = tuple(_lesson_of(result.draft) for result in imported)
        builtin = [slug for slug in slugs if (CONTENT_DIR / slug).exists()]
        if builtin:
            raise UploadRefused(_("A built-in lesson has the name %(slugs)s: built-in lessons are never replaced.")
                                % {"slugs": ", ".join(builtin)})
        existing = {slug for slug in slugs if (into / slug).exists() or (into / slug).is_symlink()}
        if existing and not replace:
            return Outcome(False, into, lessons, tuple(
                _("%(slug)s: a lesson folder of this name exists in %(into)s; tick “Replace” to overwrite it.")
                % {"slug": slug, "into": into} for slug in sorted(existing)))
        problems = _problems(out.resolve(), [(out / slug).resolve() for slug in slugs], into, existing)
        if problems:
            return Outcome(False, into, lessons, tuple(problems))
        _install(out, slugs, into, existing)
    clear_cache()
    return Outcome(True, into, lessons)
