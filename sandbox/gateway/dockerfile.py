"""A learner's Dockerfile, read the way the classic builder reads it, and written back canonically
(pure, unit-tested).

The engine resolves ``FROM bimg:1`` against *every* image on it, so without a check a learner could
build on a classmate's image and read its files. Reading the text "roughly" is not enough: the
engine splits an instruction from its arguments on any of tab, vertical tab, form feed, carriage
return or space, drops a byte-order mark, takes ``# escape=`` from the top, joins continuation
lines (skipping comments between them) and expands build arguments in ``FROM``. A checker that
reads one character differently checks one Dockerfile while the engine builds another.

So the gateway does two things here:

1. ``parse`` ports the engine's line reader (moby/buildkit ``frontend/dockerfile/parser``, the one
   Docker 20.10's classic builder uses): ``bufio.ScanLines`` (LF, one trailing CR dropped), the BOM
   on the first line, the ``escape``/``syntax`` directives, Go's ``unicode.IsSpace`` for trimming,
   ``[\\t\\v\\f\\r ]+`` between instruction and arguments, ``extractBuilderFlags`` for ``--flags``.
   ``plan`` then resolves every image the build would use: each ``FROM`` (``ARG`` defaults before
   the first ``FROM``, build arguments and the proxy arguments the engine predefines; stage names
   of *completed* stages only, since that is all the engine looks up) and each ``COPY --from``.
2. ``Plan.render`` writes the Dockerfile the engine is sent: one instruction a line, one space
   between words, no BOM, no directive but a non-default escape, ``FROM`` naming the image the
   gateway checked (by id when it is on the engine), ``COPY --from`` naming a stage by number or
   the checked image, and after every ``FROM`` a ``LABEL`` with the sandbox's own labels, so build
   cache entries of two learners never match and no learner's image is a parent of a classmate's.
   What was checked is what is built.

Anything the gateway cannot pin down for certain (a variable with no value, quotes or escapes in an
image name, ``$`` in ``--from``, a heredoc, an unknown flag, an ``ADD`` of a URL) is refused rather
than guessed.
"""

from __future__ import annotations

import dataclasses
import json
import re

# Go's unicode.IsSpace: what strings.TrimSpace and bytes.TrimLeftFunc(unicode.IsSpace) trim.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # the parser's tokenWhitespace
# RE2's \s is [\t\n\f\r ] (no \v): ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
_DIRECTIVE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_BOM = "\ufeff"
MAX_LINE = 64 * 1024 - 1  # bufio.MaxScanTokenSize: a longer line is an engine error
MAX_IMAGES = 32  # each is looked up on the engine before the build starts

KEYWORDS = {"add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
            "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir"}
# The flags the classic builder knows, per instruction; anything else is refused here.
FLAGS = {
    "copy": {"from", "chown", "chmod"},
    "add": {"chown", "chmod"},
    "healthcheck": {"interval", "timeout", "start-period", "retries"},
}
_FLAG_WORD = re.compile(r"--([a-z][a-z-]*)(?:=([!#-&(-\[\]-_a-~]*))?\Z")  # printable ASCII, no quotes, \ or `
# Proxy variables the engine lets FROM use without an ARG (BuildArgs.builtinAllowedBuildArgs).
BUILTIN_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}$\\`'\"]*))?\}"
                       r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9._:/@+=,-]*\Z")
_HEREDOC = re.compile(r"<<-?[\t ]*[\"']?[A-Za-z0-9_]")
_INDEX = re.compile(r"[+-]?[0-9]+\Z")
_LABEL_WORD = re.compile(r"[A-Za-z0-9._/-]+\Z")


class DockerfileError(Exception):
    """The Dockerfile is one the gateway cannot read for certain, or breaks classroom policy."""


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # lower case
    flags: tuple[str, ...]  # e.g. ("--from=build", "--chown=1:1")
    args: str
    line: int
    sub: "Instruction | None" = None  # what an ONBUILD registers

    def flag(self, name: str) -> str | None:
        for word in self.flags:
            key, _, value = word[2:].partition("=")
            if key == name:
                return value
        return None

    def render(self) -> str:
        rest = self.sub.render() if self.sub else self.args
        return " ".join([self.keyword.upper(), *self.flags, *([rest] if rest else [])])


@dataclasses.dataclass(frozen=True)
class Dockerfile:
    escape: str
    instructions: tuple[Instruction, ...]


# -- reading lines ------------------------------------------------------------------------------
def _scan_lines(text: str) -> list[str]:
    """bufio.ScanLines: split at LF, drop one CR before it; no empty last line after a final LF."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        line = line[:-1] if line.endswith("\r") else line
        if len(line.encode()) > MAX_LINE:
            raise DockerfileError(f"line {number} of the Dockerfile is longer than {MAX_LINE} bytes")
        out.append(line)
    return out


def _is_comment(line: str) -> bool:
    return line.lstrip(GO_SPACE).startswith("#")


def parse(data: bytes | str) -> Dockerfile:
    """The instructions of a Dockerfile, as the engine's parser splits them."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DockerfileError("the Dockerfile is not UTF-8 text") from None
    if "\x00" in data:
        raise DockerfileError("the Dockerfile contains a NUL byte")
    lines = _scan_lines(data)
    escape = "\\"
    continuation = re.compile(r"\\[ \t]*\Z")
    done = False
    seen: list[str] = []

    def directive(line: str) -> None:
        nonlocal done, escape, continuation
        if done:
            return
        match = _DIRECTIVE.match(line)
        key = match.group(1).lower() if match else ""
        if key not in ("escape", "syntax"):
            done = True
            return
        if key in seen:
            raise DockerfileError(f"only one {key} parser directive can be used")
        if key == "escape":
            if "syntax" in seen:
                # Older parsers stop reading directives at `# syntax=`: which escape applies
                # would depend on the engine's version.
                raise DockerfileError("put `# escape=` before `# syntax=`, or drop one of them")
            if match.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token {match.group(2)!r}: use ` or \\")
            escape = match.group(2)
            continuation = re.compile(re.escape(escape) + r"[ \t]*\Z")
        seen.append(key)

    def trim_continuation(line: str) -> tuple[str, bool]:
        if continuation.search(line):
            return continuation.sub("", line), False
        return line, True

    instructions: list[Instruction] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        if i == 0 and raw.startswith(_BOM):
            raw = raw[1:]
        i += 1
        start = i
        token = raw.lstrip(GO_SPACE)
        directive(token)
        if token.startswith("#"):
            token = ""
        line, end = trim_continuation(token)
        if end and line == "":
            continue
        while not end and i < len(lines):
            raw = lines[i]
            i += 1
            directive(raw)
            if _is_comment(raw):
                continue  # a comment between continuation lines is dropped
            if raw.lstrip(GO_SPACE) == "":
                continue  # an empty continuation line too
            more, end = trim_continuation(raw)
            line += more
        instructions.append(_instruction(line, start, escape))
    if not instructions:
        raise DockerfileError("the Dockerfile has no instructions")
    return Dockerfile(escape, tuple(instructions))


def _extract_flags(line: str, where: str) -> tuple[list[str], str]:
    """extractBuilderFlags: the leading ``--words``, and the rest of the line.

    The engine walks bytes and calls unicode.IsSpace on each, so a UTF-8 byte 0x85 or 0xA0 counts
    as a space there, and it processes quotes and backslashes inside a flag: a non-ASCII
    character, a quote or a backslash before the arguments start is refused."""
    words: list[str] = []
    pos, n = 0, len(line)
    while True:
        while pos < n and line[pos] in "\t\n\v\f\r ":
            pos += 1
        if pos < n and not line[pos].isascii():
            raise DockerfileError(f"{where}: a character the classroom cannot read for certain before the arguments")
        if pos >= n or not line.startswith("--", pos):
            return words, line[pos:]
        end = pos
        while end < n and line[end] not in "\t\n\v\f\r ":
            end += 1
        word = line[pos:end]
        if not word.isascii() or any(c in word for c in "'\"\\"):
            raise DockerfileError(f"{where}: write flags without quotes, backslashes or non-ASCII characters")
        pos = end
        if word == "--":
            return words, line[pos:]
        words.append(word)


def _instruction(line: str, number: int, escape: str, nested: bool = False) -> Instruction:
    trimmed = line.strip(GO_SPACE)
    parts = _WHITESPACE.split(trimmed, maxsplit=1)
    keyword = parts[0]
    where = f"line {number}"
    if not re.fullmatch(r"[A-Za-z]+", keyword) or keyword.lower() not in KEYWORDS:
        raise DockerfileError(f"{where}: unknown instruction {keyword[:40]!r}")
    keyword = keyword.lower()
    where = f"line {number} ({keyword.upper()})"
    flags, args = _extract_flags(parts[1], where) if len(parts) == 2 else ([], "")
    args = args.strip(GO_SPACE)
    names = []
    for word in flags:
        match = _FLAG_WORD.match(word)
        if not match:
            raise DockerfileError(f"{where}: the flag {word[:60]!r} is not one the classroom can read")
        name = match.group(1)
        if name not in FLAGS.get(keyword, set()):
            if keyword == "run" and name == "mount":
                raise DockerfileError(f"{where}: RUN --mount needs BuildKit, which the classroom does not run")
            raise DockerfileError(f"{where}: the flag --{name} is not allowed here")
        if name in names:
            raise DockerfileError(f"{where}: --{name} given twice")
        names.append(name)
    if args.startswith("--"):
        raise DockerfileError(f"{where}: arguments that start with -- are ambiguous; write them another way")
    if args.rstrip(" \t").endswith(escape):
        raise DockerfileError(f"{where}: ends with the escape character {escape}, which would join the next line")
    sub = None
    if keyword == "onbuild":
        if nested:
            raise DockerfileError(f"{where}: ONBUILD cannot hold another ONBUILD")
        sub = _instruction(args, number, escape, nested=True)
        if sub.keyword in ("onbuild", "from", "maintainer"):
            raise DockerfileError(f"{where}: ONBUILD {sub.keyword.upper()} is not allowed")
        args = ""
    if keyword in ("run", "copy", "add") and _HEREDOC.search(args):
        raise DockerfileError(f"{where}: heredocs (<<) need BuildKit, which the classroom does not run")
    if keyword == "add":
        _check_add(args, escape, where)
    if keyword == "label":
        _check_label(args, escape, where)
    return Instruction(keyword, tuple(flags), args, number, sub)


def _json_list(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _check_add(args: str, escape: str, where: str) -> None:
    """The engine fetches an ``ADD`` URL itself, on the host's network: never from a classroom."""
    # Both readings (JSON list and words) are checked: either one fetching a URL is refused.
    words = _WHITESPACE.split(args)
    for source in (_json_list(args) or [])[:-1] + words[:-1]:
        lowered = source.lower()
        if "://" in lowered or lowered.startswith("git@") or re.match(r"[a-z0-9+.-]+@[^/]*:", lowered):
            raise DockerfileError(
                f"{where}: ADD of a URL is not allowed by classroom policy (the engine would fetch it "
                f"outside your sandbox); download it inside the sandbox and COPY the file")
        if any(c in source for c in "$'\"" + escape):
            raise DockerfileError(f"{where}: ADD sources with variables, quotes or escapes are not allowed; use COPY")


def _words(args: str, escape: str) -> list[str]:
    """parseWords: split on whitespace outside quotes (the quotes and escapes stay in the words)."""
    words, word, quote, escaped = [], "", "", False
    for ch in args:
        if escaped:
            word += ch
            escaped = False
        elif ch == escape:
            word += ch
            escaped = True
        elif quote:
            word += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            word += ch
            quote = ch
        elif ch in GO_SPACE:
            if word:
                words.append(word)
            word = ""
        else:
            word += ch
    if word:
        words.append(word)
    return words


def _check_label(args: str, escape: str, where: str) -> None:
    """``tutorial.*`` labels are the gateway's: a learner setting them on an image (even an
    intermediate one) could pass it off as a classmate's."""
    words = _words(args, escape)
    # New form KEY=VALUE...; old form KEY VALUE (the key is then the first whitespace-separated word).
    keys = [w.partition("=")[0] for w in words] + words[:1] + _WHITESPACE.split(args)[:1]
    for key in keys:
        bare = key.replace('"', "").replace("'", "").replace(escape, "")
        if "$" in key or bare.lower().startswith("tutorial."):
            raise DockerfileError(f"{where}: the label {key[:60]!r} is not yours to set (tutorial.* labels "
                                  f"and label names with variables are the classroom's)")


# -- resolving images ---------------------------------------------------------------------------
def _substitute(word: str, values: dict[str, str], where: str) -> str:
    """shell.Lex.ProcessWord for the forms an image name uses: $A, ${A}, ${A:-word}, ${A:+word}."""
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

    if not _PLAIN_WORD.match(_VARIABLE.sub("", word)):
        raise DockerfileError(f"{where}: write the image name without quotes, escapes or other shell syntax")
    result = _VARIABLE.sub(replace, word)
    if not _PLAIN_WORD.match(result) or "$" in result:
        raise DockerfileError(f"{where}: the image name {result[:80]!r} is not one the classroom can read")
    return result


def _arg_value(raw: str) -> str | None:
    """An ARG default as the shell lexer reads it, or None when it is more than plain text."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" and not any(c in raw[1:-1] for c in "'\"\\`$"):
        return raw[1:-1]
    if any(c in raw for c in "'\"\\`"):
        return None
    return raw


@dataclasses.dataclass(frozen=True)
class Source:
    """Where an instruction takes files or its base from: a stage (by number), scratch, or an image."""
    kind: str  # "stage", "scratch" or "image"
    value: str  # the stage number, "scratch", or the image reference


@dataclasses.dataclass(frozen=True)
class Stage:
    index: int
    name: str  # "" when unnamed
    base: Source
    line: int


@dataclasses.dataclass
class Plan:
    dockerfile: Dockerfile
    stages: list[Stage]
    sources: dict[int, Source]  # instruction position -> COPY --from source
    images: list[str]  # every image reference to check, in order

    @property
    def base_images(self) -> list[str]:
        return [s.base.value for s in self.stages if s.base.kind == "image"]

    def trigger_images(self, triggers: dict[str, list[str]]) -> list[str]:
        """The images the ONBUILD triggers of the base images would use (each trigger is run by
        the engine right after its FROM, against the stages completed by then)."""
        used: list[str] = []
        for stage in self.stages:
            if stage.base.kind != "image":
                continue
            for trigger in triggers.get(stage.base.value) or []:
                try:
                    parsed = parse(trigger).instructions
                except DockerfileError as exc:
                    raise DockerfileError(f"{stage.base.value} has an ONBUILD trigger the classroom cannot read: {exc}") from None
                if len(parsed) != 1 or parsed[0].keyword in ("onbuild", "from", "maintainer"):
                    raise DockerfileError(f"{stage.base.value} has an ONBUILD trigger the classroom cannot read")
                source = _copy_source(parsed[0], self.stages[:stage.index], f"{stage.base.value}'s ONBUILD")
                if source and source.kind == "image" and source.value not in used:
                    used.append(source.value)
        return used

    def render(self, labels: dict[str, str], pins: dict[str, str] | None = None) -> str:
        """The Dockerfile the engine is sent. ``pins`` maps a checked reference to the image id
        the engine holds for it; ``labels`` go after every FROM."""
        pins = pins or {}
        for key, value in labels.items():
            if not (_LABEL_WORD.match(key) and _LABEL_WORD.match(value)):
                raise ValueError(f"label {key}={value} would need quoting")
        label_line = "LABEL " + " ".join(f"{k}={v}" for k, v in labels.items()) if labels else ""
        out = [f"# escape={self.dockerfile.escape}"] if self.dockerfile.escape != "\\" else []
        stages = iter(self.stages)
        for position, ins in enumerate(self.dockerfile.instructions):
            if ins.keyword == "from":
                stage = next(stages)
                base = pins.get(stage.base.value, stage.base.value) if stage.base.kind == "image" else stage.base.value
                if stage.base.kind == "stage":
                    base = self.stages[int(base)].name
                out.append(f"FROM {base}" + (f" AS {stage.name}" if stage.name else ""))
                if label_line:
                    out.append(label_line)
                continue
            source = self.sources.get(position)
            if source is not None:
                value = source.value if source.kind == "stage" else pins.get(source.value, source.value)
                flags = tuple(f"--from={value}" if f.startswith("--from=") else f for f in ins.flags)
                ins = dataclasses.replace(ins, flags=flags)
            out.append(ins.render())
        return "\n".join(out) + "\n"


def _copy_source(ins: Instruction, completed: list[Stage], where: str) -> Source | None:
    """What ``COPY --from=X`` names for the engine: a completed stage by name or number, else an image."""
    value = ins.flag("from")
    if value is None:
        return None
    where = f"{where} line {ins.line}".strip()
    if not value:
        raise DockerfileError(f"{where}: --from needs a stage or an image")
    if "$" in value:
        raise DockerfileError(f"{where}: --from={value}: use a stage name or an image name, without variables")
    for stage in completed:
        if stage.name and stage.name == value.lower():
            return Source("stage", str(stage.index))
    if _INDEX.match(value):
        index = int(value)
        if not 0 <= index < len(completed):
            raise DockerfileError(f"{where}: --from={value} is not a stage before this one")
        return Source("stage", str(index))
    return Source("image", value)


def plan(data: bytes | str | Dockerfile, buildargs: dict[str, str] | None = None) -> Plan:
    """Resolve every image a classic build of the Dockerfile uses."""
    dockerfile = data if isinstance(data, Dockerfile) else parse(data)
    buildargs = buildargs or {}
    values = {k: v for k, v in buildargs.items() if k in BUILTIN_ARGS and v is not None}
    stages: list[Stage] = []
    sources: dict[int, Source] = {}
    images: list[str] = []

    def use(ref: str) -> None:
        if ref not in images:
            if len(images) >= MAX_IMAGES:
                raise DockerfileError(f"the Dockerfile uses more than {MAX_IMAGES} images")
            images.append(ref)

    for position, ins in enumerate(dockerfile.instructions):
        where = f"line {ins.line} ({ins.keyword.upper()})"
        if not stages and ins.keyword not in ("arg", "from"):
            raise DockerfileError(f"{where}: the first instruction must be FROM (or ARG)")
        if ins.keyword == "arg" and not stages:
            # Meta ARGs: the only ones FROM sees. A default is expanded with the ARGs before it.
            for declaration in _words(ins.args, dockerfile.escape):
                name, has_default, default = declaration.partition("=")
                values.pop(f"?{name}", None)
                if name in buildargs and buildargs[name] is not None:
                    values[name] = buildargs[name]
                elif not has_default:
                    values.pop(name, None)  # a redeclared ARG without a default has no value again
                elif has_default:
                    plain = _arg_value(default)
                    try:
                        value = _substitute(plain, values, where) if plain is not None else None
                    except DockerfileError:
                        value = None
                    if value is None:
                        values.pop(name, None)
                        values[f"?{name}"] = default  # remembered only to explain a refusal
                    else:
                        values[name] = value
        elif ins.keyword == "from":
            words = _WHITESPACE.split(ins.args) if ins.args else []
            if len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
                if not _STAGE_NAME.match(name):
                    raise DockerfileError(f"{where}: invalid stage name {words[2]!r}")
                if any(s.name == name for s in stages):
                    raise DockerfileError(f"{where}: the stage name {name} is used twice")
            elif len(words) == 1:
                name = ""
            else:
                raise DockerfileError(f"{where}: write FROM IMAGE or FROM IMAGE AS NAME")
            for key in [k for k in values if k.startswith("?")]:
                if re.search(r"\$\{?" + re.escape(key[1:]) + r"\b", words[0]):
                    raise DockerfileError(f"{where} uses ${key[1:]}, whose default the classroom cannot read for certain")
            ref = _substitute(words[0], {k: v for k, v in values.items() if not k.startswith("?")}, where)
            if not ref:
                raise DockerfileError(f"{where}: the image name is empty")
            match = next((s for s in stages if s.name and s.name == ref.lower()), None)
            if match is not None:
                base = Source("stage", str(match.index))
            elif ref == "scratch":
                base = Source("scratch", "scratch")
            else:
                base = Source("image", ref)
                use(ref)
            stages.append(Stage(len(stages), name, base, ins.line))
        elif ins.keyword in ("copy", "add"):
            source = _copy_source(ins, stages[:-1], "")
            if source is not None:
                sources[position] = source
                if source.kind == "image":
                    use(source.value)
        elif ins.keyword == "onbuild":
            # The trigger runs in a later build, against that build's stages: a --from in it must
            # already be an image this learner may use (the later build checks it again).
            sub = ins.sub
            if sub is not None and sub.flag("from") is not None and not _INDEX.match(sub.flag("from")):
                source = _copy_source(sub, [], "ONBUILD")
                if source is not None and source.kind == "image":
                    use(source.value)
    if not stages:
        raise DockerfileError("the Dockerfile has no FROM")
    return Plan(dockerfile, stages, sources, images)


def images_used(text: bytes | str, buildargs: dict[str, str] | None = None) -> list[str]:
    """Every image a classic build of ``text`` would resolve, in order: each ``FROM`` that is not
    ``scratch`` or an earlier stage, each ``COPY --from`` that is not a completed stage, and each
    ``ONBUILD COPY --from``."""
    return plan(text, buildargs).images
