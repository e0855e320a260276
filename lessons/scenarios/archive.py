"""Unpack an uploaded scenario zip, refusing what could harm the machine that unpacks it.

The threat: the zip comes from a web form. A zip bomb (a few kilobytes that unpack to gigabytes,
or millions of tiny members) fills the disk or the inode table; a member named ``../x`` or
``/etc/x`` lands outside the folder (zip slip); a member that is a symlink makes a later write or
read follow it out. So, before anything is written:

- at most ``max_files`` members (folders included);
- the sizes the members declare add up to at most ``max_bytes``, and what is written is counted
  too (a declared size can lie; writing stops past the bound);
- a member name that is absolute (``/x``, ``\\x``, ``C:x``), holds a ``..`` part, a backslash,
  or a NUL, or appears twice, is refused, never cleaned up: a zip that needs cleaning up was not
  made by a scenario editor;
- symlinks (and other special files), and encrypted members, are refused.

Files are written with mode 0644 and folders 0755, whatever the zip says. Pure Python: the upload
page and the tests call it.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 64 * 1024


class ArchiveRefused(ValueError):
    """The zip is refused; the message says why (shown to the instructor)."""


def _check_name(name: str) -> tuple[str, ...]:
    if not name or "\x00" in name or "\\" in name:
        raise ArchiveRefused(f"member {name!r}: not a plain relative name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRefused(f"member {name!r}: absolute paths are refused")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveRefused(f"member {name!r}: '..' in a member name is refused")
    if not parts:
        raise ArchiveRefused(f"member {name!r}: empty name")
    return parts


def _check_kind(member: zipfile.ZipInfo) -> None:
    mode = member.external_attr >> 16
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a special file"
        raise ArchiveRefused(f"member {member.filename!r} is {kind}: only files and folders are accepted")
    if member.flag_bits & 0x1:
        raise ArchiveRefused(f"member {member.filename!r} is encrypted")


def unpack(source: BinaryIO | Path, into: Path, *, max_files: int, max_bytes: int) -> int:
    """Unpack the zip ``source`` into the existing empty folder ``into``; the number of files
    written. Raises :class:`ArchiveRefused` before writing anything when the listing breaks a rule,
    and stops (the caller discards ``into``) when the data runs past what was declared."""
    try:
        zipped = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveRefused(f"not a zip file ({exc})") from None
    with zipped:
        members = zipped.infolist()
        if len(members) > max_files:
            raise ArchiveRefused(f"{len(members)} members: at most {max_files} are accepted")
        declared = 0
        seen: set[tuple[str, ...]] = set()
        planned: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        for member in members:
            parts = _check_name(member.filename)
            _check_kind(member)
            if parts in seen:
                raise ArchiveRefused(f"member {member.filename!r} appears twice")
            seen.add(parts)
            declared += member.file_size
            if declared > max_bytes:
                raise ArchiveRefused(f"unpacks to more than {max_bytes} bytes")
            planned.append((member, parts))
        written = files = 0
        root = into.resolve()
        for member, parts in planned:
            target = root.joinpath(*parts)
            if member.is_dir():
                try:
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                except OSError:
                    raise ArchiveRefused(f"member {member.filename!r} is both a file and a folder") from None
                continue
            try:
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            except OSError:
                raise ArchiveRefused(f"member {member.filename!r} is inside a file") from None
            if target.exists():
                raise ArchiveRefused(f"member {member.filename!r} is both a file and a folder")
            try:
                with zipped.open(member) as data, open(target, "xb") as out:
                    while chunk := data.read(CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise ArchiveRefused(f"unpacks to more than {max_bytes} bytes")
                        out.write(chunk)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
                raise ArchiveRefused(f"member {member.filename!r} cannot be unpacked ({exc})") from None
            target.chmod(0o644)
            files += 1
        return files
