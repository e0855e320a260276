"""The lessons a process serves: every valid lesson in the configured folders, kept per process.

Views, the classroom and the sandbox limits ask here (``all_lessons``, ``get_lesson``); only the
lessons that validate are served, so one broken folder never takes the site down (its problems are
logged; ``manage.py check_lessons`` prints them).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from .lesson import Lesson
from .loader import lesson_dirs, load_dirs

log = logging.getLogger(__name__)

# Parsing every lesson takes a few hundred milliseconds, so each process keeps the result; an
# edited, added or removed lesson file is still served without a restart (by every process, not
# only the one an upload ran in): the folders' files are looked at again (one stat each) when the
# last look is older than RESCAN_SECONDS, and parsed again only when a file's mtime or size changed.
RESCAN_SECONDS = 2.0


@dataclasses.dataclass
class _Loaded:
    signature: tuple
    lessons: tuple[Lesson, ...]
    looked_at: float


_loaded: dict[tuple[Path, ...], _Loaded] = {}


def folder_signature(dirs: tuple[Path, ...]) -> tuple:
    """(path, mtime, size) of every folder and file under ``dirs``: any edit, addition or removal
    of a lesson file changes it."""
    entries = []
    pending = [str(directory) for directory in dirs]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    try:
                        info = entry.stat()
                    except OSError:  # removed while listed: the next look sees it gone
                        continue
                    entries.append((entry.path, info.st_mtime_ns, info.st_size))
                    if entry.is_dir():
                        pending.append(entry.path)
        except OSError:  # a configured folder that does not exist (yet)
            entries.append((folder, None, None))
    return tuple(sorted(entries))


def cached_lessons(dirs: tuple[Path, ...], now: float | None = None) -> tuple[Lesson, ...]:
    """The valid lessons in ``dirs``, parsed again only when their files changed (``now`` is the
    monotonic clock, passed in by tests)."""
    now = time.monotonic() if now is None else now
    loaded = _loaded.get(dirs)
    if loaded is not None and now - loaded.looked_at < RESCAN_SECONDS:
        return loaded.lessons
    signature = folder_signature(dirs)
    if loaded is None or signature != loaded.signature:
        lessons, problems = load_dirs(list(dirs))
        for problem in problems:
            log.error("lesson not served: %s", problem)
        loaded = _loaded[dirs] = _Loaded(signature, tuple(lessons), now)
    loaded.looked_at = now
    return loaded.lessons


def all_lessons() -> tuple[Lesson, ...]:
    """Every valid lesson in the configured folders, in catalogue order (cached per folder set,
    parsed again when a lesson file changes on disk)."""
    return cached_lessons(tuple(lesson_dirs()))


def clear_cache() -> None:
    _loaded.clear()


def get_lesson(slug: str) -> Lesson | None:
    return next((lesson for lesson in all_lessons() if lesson.slug == slug), None)


def sandbox_limits_of(slug: str) -> tuple[tuple[str, int], ...]:
    """The limits a lesson sets for its sandboxes (``sandbox:`` in its front matter); none for an
    unknown lesson. Registered with ``sandbox.lifecycle`` when the app loads."""
    found = get_lesson(slug)
    return found.sandbox_limits if found else ()
