"""The build context a learner sends, and the one the engine gets (pure; runs in a thread).

The engine opens the Dockerfile named by the ``dockerfile`` parameter inside the extracted context,
following symbolic links (``sub/Dockerfile`` with ``sub -> .``), and reads ``.dockerignore`` only
to drop itself and the Dockerfile. Rather than predict which file it would open, the gateway
reads the learner's Dockerfile itself (a plain file, reached through no link), checks it, and
sends a context with the Dockerfile it wrote at ``DOCKERFILE``, a name the learner's members may
not use, and a ``.dockerignore`` that drops it again after the engine has read it (so
``COPY . /app`` copies exactly what it did before).
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile

from .policy import PolicyDenied

DOCKERFILE = ".tutorial.Dockerfile"
DOCKERIGNORE = ".dockerignore"
MAX_DOCKERFILE = 1 << 20
MAX_DOCKERIGNORE = 1 << 20


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def dockerfile_path(name: str) -> str:
    """The Dockerfile's path inside the context: relative, without ``..``."""
    if not name or name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise PolicyDenied(f"the Dockerfile must be a file inside the build context: {name!r}", status=400)
    path = _clean(name)
    if path in ("", "."):
        raise PolicyDenied("name the Dockerfile (docker build -f FILE)", status=400)
    return path


def _open(context) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=context, mode="r:*")
    except tarfile.TarError as exc:
        raise PolicyDenied(f"the build context is not a tar archive: {exc}", status=400) from None


_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def close_tar(context) -> None:
    """Pad an uncompressed context to whole blocks and end it with end-of-archive blocks. The
    docker CLI sends a Dockerfile from stdin (``-f -``) as a last member without padding or end
    blocks; the engine's reader accepts that, Python's does not. Zeros after a complete archive
    are never read."""
    context.seek(0)
    if context.read(6).startswith(_COMPRESSED):
        context.seek(0)
        return
    end = context.seek(0, 2)
    context.write(b"\0" * (-end % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE))
    context.seek(0)


def read_dockerfile(context, name: str) -> tuple[str, bytes]:
    """The Dockerfile ``name`` (for the default name, the lowercase ``dockerfile`` if there is no
    ``Dockerfile``) as the engine would extract it: the last member of that name, with its path in
    the context. Refused when it or a folder on its path is a link, or missing. The file is rewound."""
    path = dockerfile_path(name)
    candidates = [path] + (["dockerfile"] if path == "Dockerfile" else [])
    last: dict[str, tarfile.TarInfo] = {}
    folders = {posixpath.join(*c.split("/")[:i]) for c in candidates for i in range(1, c.count("/") + 1)}
    close_tar(context)
    try:
        with _open(context) as tar:
            for member in tar:
                clean = _clean(member.name)
                if clean in folders and not member.isdir():
                    raise PolicyDenied(f"the Dockerfile {name} is reached through a link ({clean}); "
                                       f"give its real path with -f")
                if clean in candidates:
                    last[clean] = member
            for candidate in candidates:
                member = last.get(candidate)
                if member is None:
                    continue
                if not member.isfile():
                    raise PolicyDenied(f"the Dockerfile {name} must be a plain file, not a link or a folder")
                if member.size > MAX_DOCKERFILE:
                    raise PolicyDenied(f"the Dockerfile is larger than {MAX_DOCKERFILE >> 20} MiB")
                data = tar.extractfile(member)
                return candidate, data.read() if data else b""
    except tarfile.TarError as exc:
        raise PolicyDenied(f"the build context is not a tar archive: {exc}", status=400) from None
    finally:
        context.seek(0)
    raise PolicyDenied(f"Cannot locate specified Dockerfile: {name}", status=400)


def dockerignore_patterns(data: bytes) -> list[str]:
    """dockerignore.ReadAll: a BOM on the first line, ``#`` comments, trimmed, cleaned, no leading /."""
    patterns = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n")):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        if line or invert:
            patterns.append(("!" if invert else "") + line)
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern | None:
    """fileutils.Pattern.compile: * within a folder, ** across folders, ? one character, \\ escapes."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if pattern[i:i + 1] == "*":
                i += 1
                if pattern[i:i + 1] == "/":
                    i += 1
                out += ".*" if i >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".$":
            out += "\\" + ch
        elif ch == "\\":
            out += "\\" + pattern[i] if i < len(pattern) else "\\\\"
            i += 1 if i < len(pattern) else 0
        else:
            out += ch
    try:
        return re.compile(out + r"\Z")
    except re.error:
        return None


def ignored(path: str, patterns: list[str]) -> bool:
    """fileutils.Matches: the last pattern matching the path (or one of its folders) decides."""
    parent = posixpath.dirname(path) or "."
    parent_dirs = parent.split("/")
    matched = False
    for pattern in patterns:
        negative = pattern.startswith("!")
        body = pattern[1:] if negative else pattern
        regex = _pattern_regex(posixpath.normpath(body) if body else body)
        if regex is None or not body:
            continue
        match = bool(regex.match(path))
        dirs = body.split("/")
        if not match and parent != "." and len(dirs) <= len(parent_dirs):
            match = bool(regex.match("/".join(parent_dirs[:len(dirs)])))
        if match:
            matched = not negative
    return matched


def rewrite_context(context, dockerfile: str, out, learner_dockerfile: str = "") -> int:
    """Copy the learner's context into ``out`` (an uncompressed tar) with the gateway's Dockerfile
    at ``DOCKERFILE`` and a ``.dockerignore`` that drops it. The learner's own Dockerfile is left
    out when their ``.dockerignore`` matches it, as the engine would have removed it. Returns the
    size written."""
    ignore: bytes | None = None
    with _open(context) as tar:
        for member in tar:
            if _clean(member.name) == DOCKERIGNORE and member.isfile() and member.size <= MAX_DOCKERIGNORE:
                data = tar.extractfile(member)
                ignore = data.read() if data else b""
    context.seek(0)
    drop = learner_dockerfile if ignore is not None and learner_dockerfile and ignored(
        learner_dockerfile, dockerignore_patterns(ignore)) else None
    with _open(context) as tar, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as new:
        for member in tar:
            clean = _clean(member.name)
            if clean == drop:
                continue
            if clean == DOCKERFILE or clean.startswith(DOCKERFILE + "/"):
                raise PolicyDenied(f"{DOCKERFILE} is the classroom's name for your Dockerfile; rename that file")
            if member.issparse():
                raise PolicyDenied(f"{member.name}: sparse files are not supported in a build context")
            if clean == DOCKERIGNORE:
                if not member.isfile():
                    raise PolicyDenied(".dockerignore must be a plain file, not a link or a folder")
                if member.size > MAX_DOCKERIGNORE:
                    raise PolicyDenied(f".dockerignore is larger than {MAX_DOCKERIGNORE >> 20} MiB")
                continue
            if member.isfile():
                new.addfile(member, tar.extractfile(member))
            else:
                new.addfile(member)
        # The engine removes the files .dockerignore matches among itself and the Dockerfile
        # after reading them: the learner's patterns decide about .dockerignore as before, and a
        # last pattern always drops the gateway's Dockerfile. Without a learner's .dockerignore,
        # this one drops itself too.
        patterns = ignore.rstrip(b"\r\n") + b"\n" if ignore is not None else f"{DOCKERIGNORE}\n".encode()
        for data, member_name in (patterns + f"{DOCKERFILE}\n".encode(), DOCKERIGNORE), (dockerfile.encode(), DOCKERFILE):
            info = tarfile.TarInfo(member_name)
            info.size, info.mode = len(data), 0o644
            new.addfile(info, io.BytesIO(data))
    size = out.tell()
    out.seek(0)
    context.seek(0)
    return size
