"""Which images a Dockerfile would use, read the way the classic builder reads it (pure, unit-tested).

The engine resolves ``FROM bimg:1`` against *every* image on it, so without this check a learner
could build on a classmate's image and read its files. The gateway reads the Dockerfile out of the
build context before it is forwarded, and each image named here must be one the learner may see
(or may pull). Anything the gateway cannot resolve for certain (a variable with no value, an odd
``--from``) is refused rather than guessed.
"""

from __future__ import annotations

import re

_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(Exception):
    """The Dockerfile names an image the gateway cannot pin down."""


def _logical_lines(text: str) -> list[str]:
    """Instructions with their continuation lines joined, comments and directives dropped."""
    lines = text.replace("\r\n", "\n").split("\n")
    escape = "\\"
    # Parser directives: only at the very top, before any comment, blank line or instruction.
    for line in lines:
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
    out: list[str] = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            continue  # comments, also between continuation lines
        if not stripped and not current:
            continue
        if stripped.endswith(escape):
            current += stripped[: -len(escape)] + " "
            continue
        current += stripped
        if current.strip():
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def _substitute(word: str, values: dict[str, str], where: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("braced") or match.group("bare")
        value = values.get(name)
        op = match.group("op")
        if op == "-":
            return value if value else match.group("word")
        if op == "+":
            return match.group("word") if value else ""
        if value is None:
            raise DockerfileError(f"{where} uses ${name}, which has no value; give it one with --build-arg or an ARG default")
        return value

    result = _VARIABLE.sub(replace, word)
    if "$" in result:
        raise DockerfileError(f"{where} uses a variable the classroom cannot resolve: {word}")
    return result


def _copy_from(args: str) -> str | None:
    for token in args.split():
        if token.lower().startswith("--from="):
            return token.split("=", 1)[1]
        if not token.startswith("--"):
            return None
    return None


def images_used(text: str, buildargs: dict[str, str] | None = None) -> list[str]:
    """Every image a classic build of ``text`` would resolve, in order: each ``FROM`` that is not
    ``scratch`` or an earlier stage, and each ``COPY/ADD --from=`` (ONBUILD ones too) that is not a
    stage name or number."""
    buildargs = buildargs or {}
    meta: dict[str, str] = {}  # ARGs before the first FROM: the only ones FROM may use
    stages: list[str] = []
    images: list[str] = []
    seen_from = False

    def use(ref: str) -> None:
        if ref.lower() != "scratch" and ref.lower() not in stages and ref not in images:
            images.append(ref)

    for line in _logical_lines(text):
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ONBUILD":
            instruction, _, args = args.strip().partition(" ")
            instruction = instruction.upper()
        args = args.strip()
        if instruction == "ARG" and not seen_from:
            for declaration in args.split():
                name, has_default, default = declaration.partition("=")
                value = buildargs.get(name, default.strip("\"'") if has_default else None)
                if value is not None:
                    meta[name] = value
        elif instruction == "FROM":
            seen_from = True
            words = [w for w in args.split() if not w.startswith("--")]
            if not words:
                raise DockerfileError("a FROM line names no image")
            use(_substitute(words[0], meta, f"FROM {words[0]}"))
            if len(words) >= 3 and words[1].lower() == "as":
                stages.append(words[2].lower())
            else:
                stages.append(f"#{len(stages)}")
        elif instruction in ("COPY", "ADD"):
            source = _copy_from(args)
            if source is None:
                continue
            if "$" in source:
                raise DockerfileError(f"{instruction} --from={source}: use a stage name or an image name, without variables")
            if source.isdigit():
                continue  # a stage by number (the builder checks it exists)
            use(source)
    return images
