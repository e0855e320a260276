"""The editor tab's files: list, read and save text files in the learner's home, through the engine.

Everything happens inside the sandbox with the backend's ``run`` (an exec as the learner, never in
their TTY), so the editor works wherever a console works (Docker ``plain`` and ``docker``, and the
Kubernetes toolbox) and can reach nothing the learner's own shell cannot.

Rules, each checked twice (the path here before any call, the real file inside the sandbox):
- a path is relative to the home, or absolute under it; ``..``, control characters and paths
  longer than ``MAX_PATH_CHARS`` are refused before the engine is asked;
- inside the sandbox the path is resolved (``readlink -f``): a symlink leading out of the home is
  refused, one inside it is followed;
- only regular files of at most ``MAX_FILE_BYTES``, and only text (UTF-8 without NUL bytes):
  saving a binary file would break it;
- a save is atomic: the text goes into a temporary file beside the target, which then replaces it
  with ``mv`` (a reader in the shell sees the old file or the new one, never half);
- a save carries the hash the file had when it was opened (``""`` for a new file); if the file
  changed in the sandbox meanwhile, nothing is written and :class:`Conflict` says so, unless the
  learner chose to overwrite.

Why the text goes in chunks: ``run`` passes its script as one argument, and Linux refuses a single
argument over 128 KiB (``MAX_ARG_STRLEN``); a 256 KiB file is about 350 KiB of base64.
"""

from __future__ import annotations

import base64
import hashlib
import shlex

from django.utils.translation import gettext as _

from .backends.base import BackendError

HOME = "/home/learner"
MAX_FILE_BYTES = 256 * 1024
MAX_PATH_CHARS = 1024
# The file list stops here (a home with node_modules must not become a megabyte of JSON).
MAX_LISTED = 500
LIST_DEPTH = 6
# Raw bytes per chunk: a multiple of 3 (each chunk's base64 stands alone), under 128 KiB encoded.
CHUNK_BYTES = 3 * 24 * 1024
RUN_SECONDS = 15
# Exit codes of the scripts below, read back into errors.
OUTSIDE, NOT_FOUND, NOT_REGULAR, TOO_BIG, CHANGED, BINARY = 10, 11, 12, 13, 14, 15


class FileRefused(Exception):
    """A request the editor will not do; the message says why, for the learner."""


class Conflict(FileRefused):
    """The file changed in the sandbox since it was opened; ``current_hash`` is what it is now."""

    def __init__(self, message: str, current_hash: str):
        super().__init__(message)
        self.current_hash = current_hash


def hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clean_path(path: str, home: str = HOME) -> str:
    """The path relative to the home, or :class:`FileRefused`. Pure: nothing is asked of the engine."""
    if not isinstance(path, str) or not path.strip():
        raise FileRefused(_("Name a file."))
    if len(path) > MAX_PATH_CHARS:
        raise FileRefused(_("That path is longer than %(count)d characters.") % {"count": MAX_PATH_CHARS})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise FileRefused(_("A file name cannot contain control characters."))
    if path.startswith("~/"):
        path = path[2:]
    if path.startswith("/"):
        if path != home and not path.startswith(home + "/"):
            raise FileRefused(_("The editor opens files in your home folder (%(home)s) only.") % {"home": home})
        path = path[len(home):].lstrip("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise FileRefused(_("A path with '..' is not allowed: name the file inside your home folder."))
    if not parts:
        raise FileRefused(_("That is your home folder itself: name a file in it."))
    return "/".join(parts)


def decode_text(data: bytes) -> str:
    """The text of a file, or :class:`FileRefused` for a binary one."""
    if b"\x00" in data:
        raise FileRefused(_("This is a binary file: the editor opens text files only."))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(_("This file is not UTF-8 text: the editor opens text files only.")) from exc


# Resolves $target (a path under the home) into $real, refusing what leaves the home. Shared by
# every script below; busybox sh and readlink in every sandbox image.
_RESOLVE = """home={home}
target="$home"/{rel}
real=$(readlink -f -- "$target") || exit {not_found}
case "$real" in "$home"/*) ;; *) exit {outside} ;; esac
"""


def _resolve(rel: str, home: str) -> str:
    return _RESOLVE.format(home=shlex.quote(home), rel=shlex.quote(rel), outside=OUTSIDE, not_found=NOT_FOUND)


def list_script(home: str = HOME) -> str:
    # Hidden folders (.kube, .cache) and what is too big to open are left out; files only.
    return (f"cd {shlex.quote(home)} || exit 1\n"
            f"find . -maxdepth {LIST_DEPTH} -name '.?*' -prune -o -type f -size -{MAX_FILE_BYTES // 1024 + 1}k -print"
            f" 2>/dev/null | head -n {MAX_LISTED + 1}\n")


def read_script(rel: str, home: str = HOME) -> str:
    return _resolve(rel, home) + f"""[ -e "$real" ] || exit {NOT_FOUND}
[ -f "$real" ] || exit {NOT_REGULAR}
[ "$(stat -c %s "$real")" -le {MAX_FILE_BYTES} ] || exit {TOO_BIG}
base64 < "$real"
"""


def _writable(rel: str, home: str) -> str:
    """Resolve the target and check it may be written: a file the editor could not have opened
    (too big, with NUL bytes) is not written over either; its folder must exist."""
    return _resolve(rel, home) + f"""if [ -e "$real" ]; then
  [ -f "$real" ] || exit {NOT_REGULAR}
  size=$(stat -c %s "$real")
  [ "$size" -le {MAX_FILE_BYTES} ] || exit {TOO_BIG}
  [ "$(tr -d '\\000' < "$real" | wc -c)" -eq "$size" ] || exit {BINARY}
fi
dir=$(dirname -- "$real")
[ -d "$dir" ] || exit {NOT_FOUND}
"""


def _append(chunk: bytes) -> str:
    return f"""base64 -d >> "$part" <<'TUTORIAL_EOF' || {{ rm -f "$part"; exit 1; }}
{base64.b64encode(chunk).decode()}
TUTORIAL_EOF
"""


def _replace(expected_hash: str | None) -> str:
    """Move "$part" over "$real", unless the file changed since it was opened (``expected_hash``
    None: overwrite whatever is there). Prints the hash it has now."""
    check = ""
    if expected_hash is not None:
        check = f"""now=""
if [ -e "$real" ]; then now=$(sha256sum < "$real" | cut -d' ' -f1); fi
if [ "$now" != {shlex.quote(expected_hash)} ]; then rm -f "$part"; echo "$now"; exit {CHANGED}; fi
"""
    return f"""if [ -e "$real" ]; then [ -f "$real" ] || {{ rm -f "$part"; exit {NOT_REGULAR}; }}; fi
{check}if [ -e "$real" ]; then chmod "$(stat -c %a "$real")" "$part"; else chmod 644 "$part"; fi
mv -f "$part" "$real" || {{ rm -f "$part"; exit 1; }}
sha256sum < "$real" | cut -d' ' -f1
"""


def whole_save_script(rel: str, data: bytes, expected_hash: str | None, home: str = HOME) -> str:
    """A save in one exec, for text that fits in one chunk (most files)."""
    return (_writable(rel, home) + 'part=$(mktemp "$dir/.tutorial-edit.XXXXXX") || exit 1\n'
            + _append(data) + _replace(expected_hash))


def begin_save_script(rel: str, first: bytes, home: str = HOME) -> str:
    """A save in chunks, first: the temporary file beside the target, with the first chunk in it;
    prints its path."""
    return (_writable(rel, home) + 'part=$(mktemp "$dir/.tutorial-edit.XXXXXX") || exit 1\n'
            + _append(first) + 'echo "$part"\n')


def _own_part(part: str, home: str) -> str:
    return f"""part={shlex.quote(part)}
case "$part" in {shlex.quote(home)}/*/.tutorial-edit.*|{shlex.quote(home)}/.tutorial-edit.*) ;; *) exit {OUTSIDE} ;; esac
"""


def chunk_script(part: str, chunk: bytes, home: str = HOME) -> str:
    return _own_part(part, home) + _append(chunk)


def finish_save_script(rel: str, part: str, last: bytes, expected_hash: str | None, home: str = HOME) -> str:
    """The last chunk, then the temporary file replaces the target (unless it changed)."""
    return _resolve(rel, home) + _own_part(part, home) + _append(last) + _replace(expected_hash)


def abandon_script(part: str) -> str:
    return f"rm -f {shlex.quote(part)}\n"


def _refusal(code: int | None, rel: str, output: str) -> FileRefused:
    name = rel
    if code == OUTSIDE:
        return FileRefused(_("%(name)s leads outside your home folder: the editor opens files there only.") % {"name": name})
    if code == NOT_FOUND:
        return FileRefused(_("%(name)s: no such file or folder.") % {"name": name})
    if code == NOT_REGULAR:
        return FileRefused(_("%(name)s is not a regular file.") % {"name": name})
    if code == TOO_BIG:
        return FileRefused(_("%(name)s is larger than %(size)d KiB: open it in the terminal.") % {"name": name, "size": MAX_FILE_BYTES // 1024})
    if code == BINARY:
        return FileRefused(_("%(name)s is a binary file: the editor opens text files only.") % {"name": name})
    if code is None:
        return FileRefused(_("The sandbox did not answer in time; try again."))
    return FileRefused(_("%(name)s could not be read or written (%(detail)s).") % {"name": name, "detail": output.strip()[-200:] or f"exit code {code}"})


async def _run(backend, ref: str, script: str, *, max_output: int = 64 * 1024):
    try:
        return await backend.run(ref, script, timeout=RUN_SECONDS, max_output=max_output)
    except BackendError as exc:
        raise FileRefused(str(exc)) from exc


async def list_files(backend, ref: str, home: str = HOME) -> tuple[list[str], bool]:
    """The files the editor offers, sorted, and whether the list was cut at ``MAX_LISTED``."""
    result = await _run(backend, ref, list_script(home))
    if result.exit_code != 0:
        raise _refusal(result.exit_code, _("Your home folder"), result.output)
    names = []
    for line in result.output.splitlines():
        name = line[2:] if line.startswith("./") else line
        try:
            names.append(clean_path(name, home))
        except FileRefused:
            continue  # a name with control characters: it cannot be shown safely
    truncated = len(names) > MAX_LISTED or result.truncated
    return sorted(names[:MAX_LISTED]), truncated


async def read_file(backend, ref: str, path: str, home: str = HOME) -> dict:
    """``{path, text, hash}`` of a text file in the home; a missing file reads as new (hash "")."""
    rel = clean_path(path, home)
    # base64 adds a third plus line breaks; the margin keeps a capped file whole.
    result = await _run(backend, ref, read_script(rel, home), max_output=MAX_FILE_BYTES * 3 // 2 + 4096)
    if result.exit_code == NOT_FOUND:
        return {"path": rel, "text": "", "hash": "", "new": True}
    if result.exit_code != 0 or result.truncated:
        raise _refusal(result.exit_code if not result.truncated else TOO_BIG, rel, result.output)
    try:
        data = base64.b64decode("".join(result.output.split()), validate=True)
    except ValueError as exc:
        raise FileRefused(_("%(name)s could not be read (the copy was damaged); try again.") % {"name": rel}) from exc
    return {"path": rel, "text": decode_text(data), "hash": hash_of(data), "new": False}


async def save_file(backend, ref: str, path: str, text: str, expected_hash: str | None,
                    home: str = HOME) -> str:
    """Write ``text`` to the file atomically; its new hash. ``expected_hash`` is the hash it had
    when opened (``""``: it did not exist); None overwrites whatever is there now."""
    rel = clean_path(path, home)
    data = text.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(_("The text is larger than %(size)d KiB: it was not saved.") % {"size": MAX_FILE_BYTES // 1024})
    if b"\x00" in data:
        raise FileRefused(_("The text contains a NUL character: it was not saved."))
    if len(data) <= CHUNK_BYTES:
        done = await _run(backend, ref, whole_save_script(rel, data, expected_hash, home))
        return _saved(done, rel)
    chunks = [data[start:start + CHUNK_BYTES] for start in range(0, len(data), CHUNK_BYTES)]
    begun = await _run(backend, ref, begin_save_script(rel, chunks[0], home))
    part = begun.output.strip()
    if begun.exit_code != 0 or not part.startswith(home + "/") or "\n" in part:
        raise _refusal(begun.exit_code, rel, begun.output)
    try:
        for chunk in chunks[1:-1]:
            wrote = await _run(backend, ref, chunk_script(part, chunk, home))
            if wrote.exit_code != 0:
                raise _refusal(wrote.exit_code, rel, wrote.output)
        done = await _run(backend, ref, finish_save_script(rel, part, chunks[-1], expected_hash, home))
    except BaseException:
        try:
            await _run(backend, ref, abandon_script(part))
        except FileRefused:
            pass  # the sandbox is gone or stuck; the hidden part file goes with it
        raise
    return _saved(done, rel)


def _saved(done, rel: str) -> str:
    """The new hash from a finished save, or why it did not happen."""
    if done.exit_code == CHANGED:
        raise Conflict(_("%(name)s changed in the sandbox since you opened it.") % {"name": rel}, done.output.strip())
    if done.exit_code != 0:
        raise _refusal(done.exit_code, rel, done.output)
    return done.output.strip()
