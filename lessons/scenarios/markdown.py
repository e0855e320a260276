"""A scenario's Markdown, turned into this site's (docs/authoring.md, "Code blocks").

Killercoda and Katacoda extend Markdown; here is what each extension becomes:

- ```` ```...```{{exec}} ```` / ``{{execute}}`` -> a ``run`` block; ``{{copy}}`` -> a ``copy`` block.
  Written inline (`` `cmd`{{exec}} ``) on a line of its own, the same; inside a sentence, inline
  code (reported: inline code has no buttons here). ``{{open}}`` names a file (the **Editor** tab opens files of the home; the name is shown as code).
- ``<details><summary>Hint|Tip…</summary>`` -> a hint (one line); ``<summary>Solution|Answer…``
  -> the step's solution script (its code blocks, in order); other ``<details>`` -> a bold line and
  the text.
- Katacoda editor blocks ``<pre class="file" data-filename=… data-target=…>`` -> shown as a code
  block, and written by the step's setup (replace, append or prepend); in the home, the text says
  the **Editor** tab opens it.
- Katacoda quizzes (``>>Q1: prompt<<`` then ``=== exact``, ``=~= contains``, ``(*)``/``( )`` one
  choice, ``[*]``/``[ ]`` several) -> the step's questions.
- ``{{TRAFFIC_HOST1_<port>}}`` and ``[[HOST_SUBDOMAIN]]-<port>-[[KATACODA_HOST]]`` links: in docker
  and kubernetes workspaces, text pointing at the sandbox's **Web preview**, which lists the port
  once a container publishes it (or a Service exposes it); a preview link is made per viewer, so
  none can be written into the lesson. A plain sandbox has nothing to preview: there the link
  becomes text naming the port, and it is reported.
- Raw HTML is escaped by this site's renderer: ``<br>`` is dropped, ``<kbd>X</kbd>`` becomes
  **X**, ``<img src>`` an image, other tags are reported.

Every change is a :class:`~.rewrites.Finding` with the line it came from.
"""

from __future__ import annotations

import dataclasses
import html
import re

from .rewrites import Environment, Finding, looks_like_manifest, rewrite_manifests, rewrite_prose, rewrite_script

SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "plain", "text", "zsh", "terminal"}
HINT_SUMMARY = re.compile(r"hint|tip|clue|help|tipp|indice|pista", re.IGNORECASE)
SOLUTION_SUMMARY = re.compile(r"solution|answer|l[öo]sung|soluci[óo]n|r[ée]ponse", re.IGNORECASE)

_DETAILS = re.compile(r"<details[^>]*>\s*<summary[^>]*>(?P<summary>.*?)</summary>(?P<inner>.*?)</details>", re.DOTALL | re.IGNORECASE)
_EDITOR = re.compile(r"<pre\s+class=[\"']file[\"'](?P<attrs>[^>]*)>(?P<content>.*?)</pre>", re.DOTALL | re.IGNORECASE)
_PRE = re.compile(r"<pre(?:\s[^>]*)?>(?P<content>.*?)</pre>", re.DOTALL | re.IGNORECASE)
_ATTR = re.compile(r"([\w-]+)\s*=\s*[\"']([^\"']*)[\"']")
_OPEN_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_INLINE = re.compile(r"(?P<ticks>`+)(?P<code>.+?)(?P=ticks)\{\{\s*(?P<ann>execute|exec|copy|open)(?P<args>[^}]*)\}\}")
_STRAY = re.compile(r"\{\{\s*(execute|exec|copy|open)[^}]*\}\}")
_TRAFFIC_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)]*?(?:\{\{TRAFFIC_HOST\d+_(?P<p1>\d+)\}\}|\[\[HOST\d*_SUBDOMAIN\]\]-(?P<p2>\d+)-\[\[KATACODA_HOST\]\])[^)]*)\)")
_TRAFFIC_BARE = re.compile(r"(?:https?://)?(?:\{\{TRAFFIC_HOST\d+_(?P<p1>\d+)\}\}|\[\[HOST\d*_SUBDOMAIN\]\]-(?P<p2>\d+)-\[\[KATACODA_HOST\]\]\.environments\.katacoda\.com)\S*")
_PLACEHOLDER_VARS = re.compile(r"\[\[[A-Z0-9_]+\]\]")
_QUESTION = re.compile(r"^>>\s*Q?\d*\s*:?\s*(?P<prompt>.*?)\s*<<\s*$")
_HTML_TAG = re.compile(r"</?(?P<tag>[a-zA-Z][\w-]*)(?:\s[^<>]*)?/?>")

EXTENSION_LANGUAGES = {".py": "python", ".js": "javascript", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sh": "bash",
                       ".go": "go", ".java": "java", ".html": "html", ".css": "css", ".md": "markdown", ".rb": "ruby",
                       ".ts": "typescript", ".toml": "toml", ".ini": "ini", "Dockerfile": "docker"}


@dataclasses.dataclass
class Converted:
    body: str = ""
    hints: list[str] = dataclasses.field(default_factory=list)
    solution: list[str] = dataclasses.field(default_factory=list)  # code, in order
    solution_texts: list[str] = dataclasses.field(default_factory=list)  # solutions without code
    setup: list[str] = dataclasses.field(default_factory=list)  # editor blocks, as scripts
    questions: list[dict] = dataclasses.field(default_factory=list)
    findings: list[Finding] = dataclasses.field(default_factory=list)
    codes: list[str] = dataclasses.field(default_factory=list)  # every code block / inline command

    def note(self, line: int, kind: str, reason: str) -> None:
        self.findings.append(Finding(line, kind, reason))

    def absorb(self, found: list[Finding], base: int) -> None:
        self.findings += [dataclasses.replace(f, line=base + f.line - 1 if f.line else base) for f in found]


class _Slots:
    """Protected pieces of text swapped for tokens that keep the line count."""

    def __init__(self) -> None:
        self.pieces: list[tuple[str, str]] = []

    def put(self, original: str, replacement: str) -> str:
        token = f"\x00P{len(self.pieces)}\x00" + "\n" * original.count("\n")
        self.pieces.append((token, replacement))
        return token

    def restore(self, text: str) -> str:
        for token, replacement in reversed(self.pieces):
            text = text.replace(token, replacement)
        return text


def _fence_for(code: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", code)), default=2)
    return "`" * max(3, longest + 1)


def _block(kind: str, code: str) -> str:
    fence = _fence_for(code)
    return f"{fence}{kind}\n{code.rstrip(chr(10))}\n{fence}"


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _args_findings(out: Converted, line: int, args: str) -> None:
    for arg in args.split():
        low = arg.lower()
        if low == "interrupt":
            out.note(line, "reported", "{{exec interrupt}}: no Ctrl-C is sent before the command here; a run block only types it")
        elif low in ("ctrl-seq", "no-newline"):
            out.note(line, "reported", f"{{{{exec {arg}}}}}: key sequences are not sent here; the text is shown as code")
        elif re.fullmatch(r"t\d+|host\d+", low):
            out.note(line, "reported", f"{{{{exec {arg}}}}}: one terminal on one machine here; the command runs in it")
        else:
            out.note(line, "reported", f"unknown annotation argument {arg!r}, ignored")


def _code_kind(info: str, annotation: str | None) -> tuple[str, bool]:
    """(the fence info to write, whether the content is shell to rewrite)."""
    language = info.strip().split()[0].lower() if info.strip() else ""
    if annotation in ("exec", "execute"):
        return "run", True
    if annotation == "copy":
        return "copy", language in SHELL_LANGUAGES or language == "dockerfile"
    return info.strip(), language in SHELL_LANGUAGES


def _rewrite_code(code: str, shell: bool, info: str, env: Environment, run: bool) -> tuple[str, list[Finding]]:
    language = info.strip().split()[0].lower() if info.strip() else ""
    if language in ("yaml", "yml") or (not shell and looks_like_manifest(code)):
        code, found = rewrite_manifests(code, env) if env.workspace == "kubernetes" else (code, [])
        code, more = rewrite_script(code, env, manifest=True)
        return code, found + more
    if shell or language == "dockerfile":
        return rewrite_script(code, env, judge=run)
    return code, []


def _fences(text: str, base: int, env: Environment, out: Converted, slots: _Slots) -> str:
    """Swap fenced blocks (with a trailing ``{{exec}}``/``{{copy}}``) for converted, protected ones."""
    lines = text.split("\n")
    result: list[str] = []
    i = 0
    while i < len(lines):
        match = _OPEN_FENCE.match(lines[i])
        if not match:
            result.append(lines[i])
            i += 1
            continue
        fence = match.group("fence")
        close = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*(?:\{\{\s*(?P<ann>execute|exec|copy|open)(?P<args>[^}]*)\}\})?\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if j >= len(lines):
            result.append(lines[i])
            i += 1
            continue
        closing = close.match(lines[j])
        annotation = closing.group("ann")
        code = "\n".join(line[len(match.group("indent")) :] if line.startswith(match.group("indent")) else line for line in lines[i + 1 : j])
        line_number = base + i
        if annotation == "open":
            out.note(line_number, "reported", "{{open}}: nothing opens by itself here; the block is shown as code (the Editor tab opens files of the home)")
            annotation = None
        if closing.group("args") and closing.group("args").strip():
            _args_findings(out, line_number, closing.group("args"))
        kind, shell = _code_kind(match.group("info"), annotation)
        code, found = _rewrite_code(code, shell, match.group("info") if kind not in ("run", "copy") else "", env, kind == "run")
        out.absorb(found, line_number + 1)
        if annotation:
            out.note(line_number, "mapped", f"code block with {{{{{annotation}}}}} -> a `{kind}` block")
        out.codes.append(code)
        original = "\n".join(lines[i : j + 1])
        result.append(slots.put(original, _block(kind, code)))
        i = j + 1
    return "\n".join(result)


def _inline(text: str, base: int, env: Environment, out: Converted, slots: _Slots) -> str:
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if "{{" not in line:
            continue
        number = base + index
        matches = list(_INLINE.finditer(line))
        only = len(matches) == 1 and re.fullmatch(r"\s*(?:[-*+]\s+|\d+\.\s+)?", line[: matches[0].start()]) and not line[matches[0].end() :].strip()
        if only:
            match = matches[0]
            code, annotation, args = match.group("code"), match.group("ann"), match.group("args")
            if args.strip():
                _args_findings(out, number, args)
            if annotation != "open":
                kind = "run" if annotation in ("exec", "execute") else "copy"
                code, found = rewrite_script(code, env, judge=kind == "run")
                out.absorb(found, number)
                out.codes.append(code)
                out.note(number, "mapped", f"inline `...`{{{{{annotation}}}}} on a line of its own -> a `{kind}` block")
                lines[index] = slots.put(line, _block(kind, code))
                continue
        pieces, last = [], 0
        for match in matches:
            code, annotation, args = match.group("code"), match.group("ann"), match.group("args")
            if args.strip():
                _args_findings(out, number, args)
            if annotation == "open":
                out.note(number, "reported", f"`{code}`{{{{open}}}}: nothing opens by itself here; the file name is shown as code (the Editor tab opens files of the home)")
            else:
                kind = "run" if annotation in ("exec", "execute") else "copy"
                code, found = rewrite_script(code, env, judge=kind == "run")
                out.absorb(found, number)
                out.codes.append(code)
                out.note(number, "reported", f"inline `...`{{{{{annotation}}}}} inside a sentence -> inline code (no {kind} button for inline code here)")
            pieces += [line[last : match.start()], f"`{code}`"]
            last = match.end()
        pieces.append(line[last:])
        line = "".join(pieces)
        for stray in _STRAY.finditer(line):
            out.note(number, "reported", f"{stray.group()} not after a code block: removed")
        lines[index] = _STRAY.sub("", line)
    return "\n".join(lines)


# Workspaces whose sandboxes have a web preview (sandbox.preview.offered; a site may still turn it off)
PREVIEW_WORKSPACES = {"docker": "a container publishes it", "kubernetes": "a Service of the namespace exposes it"}


def _traffic(text: str, base: int, out: Converted, env: Environment) -> str:
    listed_when = PREVIEW_WORKSPACES.get(env.workspace)

    def link(match: re.Match) -> str:
        port = match.group("p1") or match.group("p2")
        line = base + _line(text, match.start()) - 1
        if listed_when:
            out.note(line, "mapped", f"web preview link to port {port} -> text pointing at the Web preview, which lists the port once {listed_when}")
            return f"{match.group('text')} (port {port}: open it from **Web preview** above the terminal)"
        out.note(line, "reported", f"web preview link to port {port}: a plain sandbox has no web preview; the link became text")
        return f"{match.group('text')} (port {port} in the sandbox)"

    def bare(match: re.Match) -> str:
        port = match.group("p1") or match.group("p2")
        line = base + _line(text, match.start()) - 1
        if listed_when:
            out.note(line, "mapped", f"web preview address of port {port} -> text pointing at the Web preview, which lists the port once {listed_when}")
            return f"port {port} (open it from **Web preview** above the terminal)"
        out.note(line, "reported", f"web preview address of port {port}: a plain sandbox has no web preview")
        return f"port {port} in the sandbox"

    text = _TRAFFIC_LINK.sub(link, text)
    text = _TRAFFIC_BARE.sub(bare, text)
    for match in _PLACEHOLDER_VARS.finditer(text):
        out.note(base + _line(text, match.start()) - 1, "reported", f"{match.group()} is a Katacoda placeholder with no value here; left as text")
    return text


def _quiz(text: str, base: int, out: Converted) -> str:
    lines = text.split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        match = _QUESTION.match(lines[i].strip())
        if not match:
            kept.append(lines[i])
            i += 1
            continue
        number = base + i
        prompt = match.group("prompt")
        exact, contains, choices, correct, multiple = [], [], [], [], False
        i += 1
        while i < len(lines) and lines[i].strip() and not _QUESTION.match(lines[i].strip()):
            answer = lines[i].strip()
            if answer.startswith("==="):
                exact.append(answer[3:].strip())
            elif answer.startswith("=~="):
                contains.append(answer[3:].strip())
            elif re.match(r"^[\[(][* ][\])]", answer):
                multiple = multiple or answer.startswith("[")
                choices.append(answer[3:].strip())
                if answer[1] == "*":
                    correct.append(answer[3:].strip())
            else:
                out.note(base + i, "reported", f"quiz line not understood, kept as text: {answer}")
                kept.append(lines[i])
            i += 1
        if choices:
            if not correct:
                out.note(number, "reported", f"quiz question {prompt!r} marks no right choice: dropped from the quiz, kept as text")
                kept.append(f"**{prompt}** " + ", ".join(choices))
                continue
            if len(correct) > 1:
                out.note(number, "reported", f"quiz question {prompt!r} has {len(correct)} right choices; one choice is right here: {correct[0]!r} stays, "
                         f"the other right ones ({', '.join(correct[1:])}) are named in the prompt instead of offered")
                choices = [c for c in choices if c not in correct[1:]]
                prompt = f"{prompt} ({', '.join(correct[1:])} is right too: pick another)"
            elif multiple:
                out.note(number, "mapped", f"quiz question {prompt!r}: [*] with one right choice -> one choice")
            question = {"prompt": prompt, "choices": choices, "answer": correct[0]}
        elif exact or contains:
            if contains:
                out.note(number, "reported", f"quiz question {prompt!r}: =~= (answer contains) is approximated by an exact short answer {contains!r}")
            question = {"prompt": prompt, "answer_text": exact + contains}
        else:
            out.note(number, "reported", f"quiz question {prompt!r} has no answers: kept as text")
            kept.append(f"**{prompt}**")
            continue
        out.note(number, "mapped", f"quiz question {prompt!r} -> a question of a quiz step")
        out.questions.append(question)
    return "\n".join(kept)


def _html(text: str, base: int, out: Converted) -> str:
    def kbd(match: re.Match) -> str:
        return f"**{match.group(1)}**"

    def image(match: re.Match) -> str:
        attrs = dict(_ATTR.findall(match.group(0)))
        out.note(base + _line(text, match.start()) - 1, "mapped", "<img> -> a Markdown image")
        return f"![{attrs.get('alt', '')}]({attrs.get('src', '')})"

    text = re.sub(r"<kbd>(.*?)</kbd>", kbd, text, flags=re.IGNORECASE)
    text = re.sub(r"<img\s[^>]*>", image, text, flags=re.IGNORECASE)
    for match in re.finditer(r"<br\s*/?>", text, flags=re.IGNORECASE):
        out.note(base + _line(text, match.start()) - 1, "mapped", "<br> dropped (paragraphs break lines here)")
    text = re.sub(r"[ \t]*<br\s*/?>[ \t]*", "", text, flags=re.IGNORECASE)
    for match in _HTML_TAG.finditer(text):
        if "\x00" in match.group(0):
            continue
        out.note(base + _line(text, match.start()) - 1, "reported", f"raw HTML <{match.group('tag')}> is shown as text here (lesson Markdown is sanitized)")
    return text


def _editor(match: re.Match, text: str, base: int, env: Environment, out: Converted, editor_root: str) -> str:
    attrs = dict((k.lower(), v) for k, v in _ATTR.findall(match.group("attrs")))
    line = base + _line(text, match.start()) - 1
    name = attrs.get("data-filename", "")
    content = html.unescape(match.group("content")).strip("\n") + "\n"
    target = attrs.get("data-target", "replace").lower()
    if not name:
        out.note(line, "reported", "editor block without data-filename: shown as code, not written")
        return _block("", content)
    path = name if name.startswith(("/", "~", "$HOME")) else f"{editor_root.rstrip('/')}/{name}"
    path, found = rewrite_script(path, env)
    out.absorb([f for f in found if f.kind == "rewritten"], line)
    if looks_like_manifest(content):
        content, found = rewrite_script(content, env, manifest=True)
        out.absorb(found, line)
    quoted = path.replace('"', '\\"')
    folder = quoted.rsplit("/", 1)[0] if "/" in quoted else "."
    marker = "TUTORIAL_EDITOR_EOF"
    if target == "append":
        script = f'mkdir -p "{folder}"\ncat >> "{quoted}" <<\'{marker}\'\n{content}{marker}'
    elif target == "prepend":
        script = f'mkdir -p "{folder}"\n{{ cat <<\'{marker}\'\n{content}{marker}\ncat "{quoted}" 2>/dev/null; }} > "{quoted}.new" && mv "{quoted}.new" "{quoted}"'
    else:
        if target != "replace":
            out.note(line, "reported", f"editor block data-target={target!r} (at a marker) is written as a whole file here")
        script = f'mkdir -p "{folder}"\ncat > "{quoted}" <<\'{marker}\'\n{content}{marker}'
    if env.workspace == "kubernetes" and "$REGISTRY" in content:
        script += f'\nsed -i "s|\\$REGISTRY|$REGISTRY|g" "{quoted}"'
    out.setup.append(script)
    # The Editor tab opens files of the home only.
    in_home = path.startswith("$HOME/")
    out.note(line, "mapped", f"editor block for {name} ({target}) -> the step's setup writes {path}; the learner no longer copies it into an editor"
             + ("; the Editor tab opens it" if in_home else ""))
    language = next((lang for ext, lang in EXTENSION_LANGUAGES.items() if name.endswith(ext)), "")
    opened = "; open it from the **Editor** tab" if in_home else ""
    return f"`{path.replace('$HOME', '~', 1)}` (written for you when the step starts{opened}):\n\n{_block(language, content)}"


def _one_line(markdown: str) -> str:
    """A hint is one line of inline Markdown: code blocks become inline code."""

    def inline(match: re.Match) -> str:
        code = "; ".join(part.strip() for part in match.group("code").strip().split("\n") if part.strip())
        return f" `{code}` "

    markdown = re.sub(r"(?P<f>`{3,})[^\n]*\n(?P<code>.*?)\n\s*(?P=f)", inline, markdown, flags=re.DOTALL)
    return re.sub(r"\s+", " ", markdown).strip()


def _convert(text: str, base: int, env: Environment, out: Converted, editor_root: str, *, top: bool) -> str:
    slots = _Slots()
    if top:
        def details(match: re.Match) -> str:
            line = base + _line(text, match.start()) - 1
            summary = re.sub(r"<[^>]+>", "", match.group("summary")).strip()
            inner_out = Converted()
            inner = _convert(match.group("inner"), line, env, inner_out, editor_root, top=False)
            out.findings += inner_out.findings
            out.setup += inner_out.setup
            out.questions += inner_out.questions
            if SOLUTION_SUMMARY.search(summary):
                if inner_out.codes:
                    out.solution += inner_out.codes
                    out.note(line, "mapped", f"<details> {summary!r} -> the step's solution ({len(inner_out.codes)} code block(s))")
                else:
                    out.solution_texts.append(_one_line(inner))
                    out.note(line, "reported", f"<details> {summary!r} has no code: its text became the last hint, not a solution script")
                return slots.put(match.group(0), "")
            if HINT_SUMMARY.search(summary):
                out.hints.append(_one_line(inner))
                out.codes += inner_out.codes
                out.note(line, "mapped", f"<details> {summary!r} -> a hint")
                return slots.put(match.group(0), "")
            out.codes += inner_out.codes
            out.note(line, "reported", f"<details> {summary!r} (neither hint nor solution) -> a bold line and its text, always shown")
            return slots.put(match.group(0), f"**{summary}**\n\n{inner.strip()}")

        text = _DETAILS.sub(details, text)
    text = _EDITOR.sub(lambda m: slots.put(m.group(0), _editor(m, text, base, env, out, editor_root)), text)

    def pre(match: re.Match) -> str:
        out.note(base + _line(text, match.start()) - 1, "mapped", "raw <pre> -> a code block (shown as written, annotations inside are not run)")
        return slots.put(match.group(0), _block("", html.unescape(match.group("content")).strip("\n")))

    text = _PRE.sub(pre, text)
    text = _fences(text, base, env, out, slots)
    text = _inline(text, base, env, out, slots)
    text = _traffic(text, base, out, env)
    text = _quiz(text, base, out)
    text = _html(text, base, out)
    text, found = rewrite_prose(text, env)
    out.absorb(found, base)
    text = slots.restore(text)
    return re.sub(r"\n{3,}", "\n\n", text)


def convert(text: str, env: Environment, *, editor_root: str = "$HOME") -> Converted:
    """Convert a scenario's Markdown file; finding lines are lines of ``text``."""
    out = Converted()
    out.body = _convert(text.replace("\r\n", "\n"), 1, env, out, editor_root, top=True).strip() + "\n"
    return out


def solution_from(text: str, env: Environment) -> tuple[list[str], list[Finding]]:
    """The code of a Katacoda ``answer`` file (its code blocks and inline commands, in order)."""
    out = Converted()
    _convert(text.replace("\r\n", "\n"), 1, env, out, "$HOME", top=False)
    return out.codes, out.findings
