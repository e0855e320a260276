"""A scenario -> this site's lesson folder (files as text) and its report.

What maps (docs/importing.md has the whole table):

- ``title`` -> ``lesson.md`` title; ``description`` -> summary; ``details.intro.text`` -> the
  introduction; each of ``details.steps[]`` -> ``steps/NN-slug.md``; ``details.finish.text`` -> a
  last reading step.
- ``verify`` -> ``check`` (exit 0 = passed, as here), wrapped so a failing check always tells the
  learner something; ``background`` (Katacoda ``courseData``) -> ``setup``; ``details.intro``'s
  background -> the first step's setup; ``details.assets.host01[]`` -> a setup in the first step
  that recreates each file (globs expanded, chmod applied).
- ``backend.imageid`` -> ``workspace``: kubernetes for kubeadm/k3s/minikube images, docker when
  the texts or scripts use ``docker``, plain otherwise.

A step with a check needs a solution here (the tests run it). One comes from the step's
``<details>`` Solution block or Katacoda ``answer`` file; when there is none, the solution fails on
purpose (``FAILING_SOLUTION``) and the report says so, so the lesson tests point at the step.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import yaml

from .markdown import Converted, convert, solution_from
from .reader import Scenario
from .report import Report, line_of
from .rewrites import Environment, Finding, looks_like_manifest, rewrite_script

FAILING_SOLUTION = 'echo "no solution in the scenario" >&2; exit 1\n'
# The first line of a check this site exported: it prints its own feedback (no wrapper needed).
EXPORTED_CHECK_MARKER = "# tutorial-check: prints its own feedback"
MARK = "> **Imported:**"
WORKSPACE_IMAGES = {"plain": "base", "docker": "docker", "kubernetes": "toolbox"}
KUBERNETES_IMAGE_IDS = re.compile(r"kubernetes|kubeadm|k3s|k8s|minikube|openshift|kind", re.IGNORECASE)
# A verify script testing that a file exists in a system folder: the learner was to make it there.
SYSTEM_FILE_TEST = re.compile(r"(?:\bstat|\btest\s+-[efdsx]|\[\s+-[efdsx]|\bls)\s+[\"']?(?P<path>/(?:etc|usr|opt|var|srv|mnt|lib|bin|sbin)/[^\s\"';|&]*)")
DOCKER_COMMAND = re.compile(r"(?:^|[\s`$(;&|])docker(?:\s+\w|$)", re.MULTILINE)

TOP_KEYS = {
    "title": "mapped",
    "description": "mapped",
    "details": "mapped",
    "backend": "mapped",
    "time": "mapped",
    "difficulty": "no difficulty field here",
    "pathwayTitle": "courses are folders of lessons here (order and prerequisites)",
    "interface": "one layout here: the text beside a terminal (no IDE)",
    "environment": "one layout here: the text beside a terminal, with its Editor tab and Web preview (no dashboards)",
    "files": "the Editor tab lists the home's files itself; nothing opens by itself",
    "noindex": "every lesson is listed in the catalogue",
    "private": "lessons are served to every learner of the site",
    "icon": "no lesson icons here",
}
PART_KEYS = {"title", "text", "verify", "background", "foreground", "answer", "courseData", "code", "credits"}


@dataclasses.dataclass
class _Part:
    """One intro, step or finish of the scenario, on its way to a step file."""

    converted: Converted
    text_name: str
    title: str
    setup: list[str] = dataclasses.field(default_factory=list)
    check: str | None = None
    timeout: int | None = None
    solution: list[str] = dataclasses.field(default_factory=list)
    cannot: list[Finding] = dataclasses.field(default_factory=list)  # what cannot run, to mark the step
    slug: str = ""


@dataclasses.dataclass
class Draft:
    slug: str
    title: str
    workspace: str
    files: dict[str, str]  # path inside the lesson folder -> text
    license: Path | None
    report: Report
    source: str


def slugify(text: str, fallback: str = "step") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:50].strip("-") or fallback


class _LiteralDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_LiteralDumper.add_representer(str, _represent_str)


def front_matter(meta: dict, body: str) -> str:
    dumped = yaml.dump(meta, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, width=100000)
    return f"---\n{dumped}---\n{body.strip()}\n"


def _strip_shebang(script: str) -> tuple[str, bool]:
    lines = script.replace("\r\n", "\n").split("\n")
    bash = False
    if lines and lines[0].startswith("#!"):
        bash = "bash" in lines[0]
        lines = lines[1:]
    # Leading blank lines stay, so that line numbers in the report match the file.
    return "\n".join(lines).rstrip("\n") + "\n", bash


BASH_DELIMITER = "TUTORIAL_BASH_SCRIPT"


def run_with_bash(body: str) -> str:
    """A script written for bash, as a script for sh that hands it to bash (the lesson images hold
    /bin/bash; checks and setups run with sh). `bash -c` rather than a here-document on bash's
    stdin, so that a command in the script that reads stdin does not eat the script itself."""
    delimiter = BASH_DELIMITER
    while delimiter in body:
        delimiter += "_"
    return f"bash -c \"$(cat <<'{delimiter}'\n{body.rstrip()}\n{delimiter}\n)\"\n"


def _check_from_verify(script: str, title: str) -> tuple[str, int | None]:
    """(check, timeout named by an exported check). A verify script may print nothing when it
    fails; a check here must say why, so it runs in a subshell and a failure adds a sentence."""
    body, _ = _strip_shebang(script)
    first, _, rest = body.partition("\n")
    if first.startswith(EXPORTED_CHECK_MARKER):
        match = re.search(r"timeout=(\d+)", first)
        return rest.strip("\n") + "\n", int(match.group(1)) if match else None
    message = f"Not done yet: {title}. Read the step again, or ask for a hint.".replace('"', "'").replace("$", "").replace("`", "'")
    return f'if (\n{body.rstrip()}\n); then\n  exit 0\nfi\necho "{message}"\nexit 1\n', None


class _Mapper:
    def __init__(self, scenario: Scenario, order: int, slug: str | None, prerequisites: tuple[str, ...]) -> None:
        self.scenario = scenario
        self.index = scenario.index
        self.text = scenario.index_text
        self.report = Report()
        self.order = order
        self.slug = slug or slugify(scenario.name or str(self.index.get("title", "")), "imported")
        self.prerequisites = prerequisites
        self.files: dict[str, str] = {}

    # -- reporting helpers
    def at(self, needle: str, kind: str, reason: str, start: int = 0) -> None:
        self.report.add("index.json", line_of(self.text, needle, start), kind, reason)

    def findings(self, file: str, found: list[Finding], base: int = 1) -> None:
        for finding in found:
            self.report.add(file, base + finding.line - 1 if finding.line else base, finding.kind, finding.reason)

    def read(self, name, what: str, needle: str) -> str | None:
        if not isinstance(name, str) or not name:
            self.at(needle, "reported", f"{what}: expected a file name, got {name!r}")
            return None
        content = self.scenario.read(name)
        if content is None:
            self.at(f'"{name}"', "reported", f"{what} {name} is named but missing (or not text, or outside the scenario folder)")
        return content

    # -- the whole scenario
    def details(self) -> dict:
        details = self.index.get("details", {})
        if not isinstance(details, dict):
            self.at('"details"', "reported", "details is not an object: no steps")
            return {}
        return details

    def top_keys(self) -> None:
        for key, value in self.index.items():
            meaning = TOP_KEYS.get(key)
            if meaning is None:
                self.at(f'"{key}"', "reported", f"unknown key {key!r} in index.json: not mapped")
            elif meaning != "mapped":
                shown = f"{{{', '.join(value)}}}" if isinstance(value, dict) else str(value)[:80]
                self.at(f'"{key}"', "reported", f"{key} = {shown}: not mapped ({meaning})")
        for key in self.details():
            if key not in ("intro", "steps", "finish", "assets"):
                self.at(f'"{key}"', "reported", f"unknown key details.{key}: not mapped")
        backend = self.index.get("backend", {})
        if isinstance(backend, dict):
            for key in backend:
                if key != "imageid":
                    self.at(f'"{key}"', "reported", f"backend.{key}: not mapped (the classroom picks the sandbox)")

    def all_texts(self) -> str:
        details = self.details()
        names = []
        for part in [details.get("intro"), details.get("finish"), *(details.get("steps") or [])]:
            if isinstance(part, dict):
                names += [part.get(key) for key in PART_KEYS if key not in ("title", "credits")]
        code = []
        for name in names:
            text = self.scenario.read(name) if isinstance(name, str) else None
            if text is None:
                continue
            if not name.endswith(".md"):
                code.append(text)
                continue
            # Only what is run counts: prose and quizzes may name docker without using it.
            code += [m.group(2) for m in re.finditer(r"(`{3,}|~{3,})[^\n]*\n(.*?)\n\s*\1", text, re.DOTALL)]
            code += re.findall(r"`([^`]+)`\{\{\s*exec", text)
        return "\n".join(code)

    def workspace(self) -> str:
        backend = self.index.get("backend", {})
        imageid = str(backend.get("imageid", "")) if isinstance(backend, dict) else ""
        if not imageid:
            self.report.add("index.json", 1, "reported", "no backend.imageid: the workspace is judged from the texts")
        if KUBERNETES_IMAGE_IDS.search(imageid):
            workspace, why = "kubernetes", "a Kubernetes image: the learner's own namespace on the classroom cluster"
            if re.search(r"2nodes|multi|nodes", imageid):
                self.at(f'"{imageid}"', "reported", f"imageid {imageid} has several nodes: one shared cluster here, no node01 to log in to")
        elif DOCKER_COMMAND.search(self.all_texts()) or imageid.lower().startswith("docker"):
            workspace, why = "docker", "the texts or scripts use docker: the classroom's Docker gateway"
        else:
            workspace, why = "plain", "no docker or Kubernetes in it: a plain sandbox"
        self.at(f'"{imageid}"' if imageid else '"backend"', "mapped", f"backend.imageid {imageid or '(none)'} -> workspace {workspace} ({why})")
        return workspace

    # -- assets
    def asset_targets(self) -> tuple[list[tuple[dict, int]], tuple[tuple[str, str], ...]]:
        assets = self.details().get("assets", {})
        entries: list[tuple[dict, int]] = []
        moved: dict[str, str] = {}
        if not isinstance(assets, dict):
            return entries, ()
        start = self.text.find('"assets"')
        for host, items in assets.items():
            if host != "host01":
                self.at(f'"{host}"', "reported", f"assets for {host}: one machine here, only host01's assets are recreated")
                continue
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict):
                    continue
                line = line_of(self.text, f'"{item.get("file", "")}"', start)
                entries.append((item, line))
                for key in item:
                    if key not in ("file", "target", "chmod"):
                        self.report.add("index.json", line, "reported", f"asset key {key!r}: not mapped")
                target = str(item.get("target", "~"))
                if target.startswith("/") and not re.match(r"^/root(/|$)", target) and not re.match(r"^/tmp(/|$)", target):
                    folder = "/" + target.strip("/")
                    moved[folder] = "$HOME" + folder
        return entries, tuple(sorted(moved.items()))

    def asset_setup(self, entries: list[tuple[dict, int]], env: Environment) -> str:
        scripts = []
        base = self.scenario.root / "assets"
        if not base.is_dir():
            base = self.scenario.root
        for item, line in entries:
            pattern = str(item.get("file", ""))
            target = str(item.get("target", "~"))
            destination, found = rewrite_script(target.replace("~", "$HOME", 1) if target.startswith("~") else target, env)
            if not destination.startswith(("/", "$HOME")):
                destination = f"$HOME/{destination}"
            self.findings("index.json", found, line)
            if not pattern or pattern.startswith("/") or ".." in Path(pattern).parts:
                self.report.add("index.json", line, "reported", f"asset {pattern!r}: not a name inside assets/, skipped")
                continue
            matches = sorted(base.glob(pattern))
            files: list[tuple[Path, str]] = []
            for match in matches:
                if base.resolve() not in match.resolve().parents:
                    continue
                if match.is_dir():
                    files += [(f, f"{match.name}/{f.relative_to(match)}") for f in sorted(match.rglob("*")) if f.is_file()]
                elif match.is_file():
                    files.append((match, match.name))
            if not files:
                self.report.add("index.json", line, "reported", f"asset {pattern} is named but no file in assets/ matches it")
                continue
            for path, relative in files:
                scripts.append(self.asset_script(path, relative, destination, str(item.get("chmod", "")), env, line))
            self.report.add("index.json", line, "mapped", f"asset {pattern} -> {len(files)} file(s) written to {destination} by the first step's setup"
                            + (f", chmod {item['chmod']}" if item.get("chmod") else ""))
        return "\n".join(scripts)

    def asset_script(self, path: Path, relative: str, destination: str, chmod: str, env: Environment, line: int) -> str:
        target = f"{destination.rstrip('/')}/{relative}"
        folder = target.rsplit("/", 1)[0]
        data = path.read_bytes()
        rel_name = f"assets/{relative}"
        marker = "TUTORIAL_ASSET_EOF"
        lines = [f'mkdir -p "{folder}"']
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and (path.suffix in (".sh", ".bash") or looks_like_manifest(text)):
            text, found = rewrite_script(text, env, manifest=path.suffix not in (".sh", ".bash"))
            self.findings(rel_name, found)
        if text is not None and text.endswith("\n") and marker not in text and "\r" not in text:
            lines.append(f"cat > \"{target}\" <<'{marker}'\n{text}{marker}")
        else:
            encoded = base64.b64encode(text.encode("utf-8") if text is not None else data).decode("ascii")
            wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
            lines.append(f"base64 -d > \"{target}\" <<'{marker}'\n{wrapped}\n{marker}")
        if env.workspace == "kubernetes" and text is not None and "$REGISTRY" in text:
            lines.append(f'sed -i "s|\\$REGISTRY|$REGISTRY|g" "{target}"')
        if chmod:
            if re.fullmatch(r"[0-7]{3,4}|[ugoa]*[+-=][rwxXst]+", chmod):
                lines.append(f'chmod {chmod} "{target}"')
                if "x" in chmod or re.fullmatch(r"[0-7]*[1357][0-7]{0,2}", chmod):
                    self.report.add("index.json", line, "reported", f"{relative} is made executable, but the sandbox's home and /tmp do not execute programs: run it as `sh {target.replace('$HOME', '~', 1)}`")
            else:
                self.report.add("index.json", line, "reported", f"chmod {chmod!r} for {relative} not understood: not applied")
        return "\n".join(lines)

    # -- one step
    def script(self, name, what: str, env: Environment, needle: str) -> tuple[str | None, bool]:
        content = self.read(name, what, needle)
        if content is None:
            return None, False
        body, bash = _strip_shebang(content)
        body, found = rewrite_script(body, env)
        self.findings(name, found, 2 if content.startswith("#!") else 1)
        if bash:
            body = run_with_bash(body)
            self.report.add(name, 1, "mapped", f"{what} is a bash script: it runs with bash (/bin/bash in the lesson images)")
        return body, True

    def part(self, part: dict, role: str, number: int, env: Environment, editor_root: str) -> _Part:
        needle_start = self.text.find(f'"{part.get("text", "")}"') if part.get("text") else 0
        reported_before = len(self.report.items)
        text_name = part.get("text")
        for key in part:
            if key not in PART_KEYS:
                self.at(f'"{key}"', "reported", f"unknown key {key!r} in {role}: not mapped", needle_start)
        if part.get("credits"):
            self.at('"credits"', "reported", f"credits {part['credits']!r}: not mapped (the licence and report travel with the lesson)")
        source = self.read(text_name, f"{role} text", '"text"') if text_name else None
        if source is None and not text_name:
            self.at('"steps"', "reported", f"{role} {number} has no text file")
        converted = convert(source or "", env, editor_root=editor_root)
        if text_name:
            self.findings(text_name, converted.findings)
        step = _Part(converted, text_name or "", str(part.get("title") or ""))
        for key in ("background", "courseData"):
            if part.get(key):
                body, ok = self.script(part[key], f"{role} {key}", env, f'"{part[key]}"')
                if ok:
                    step.setup.append(body)
                    self.at(f'"{part[key]}"', "mapped", f"{key} {part[key]} -> setup (runs as the learner before the step, not as root)")
        for key in ("foreground", "code"):
            if part.get(key):
                content = self.read(part[key], f"{role} {key}", f'"{part[key]}"')
                first = next((l for l in (content or "").splitlines() if l.strip() and not l.startswith("#!")), "")
                self.at(f'"{part[key]}"', "reported", f"{key} {part[key]} runs in the learner's terminal on Killercoda/Katacoda; nothing runs in the terminal by itself here (first line: {first[:60]!r})")
        if part.get("verify"):
            content = self.read(part["verify"], f"{role} verify", f'"{part["verify"]}"')
            if content is not None and not _strip_shebang(content)[0].strip():
                self.at(f'"{part["verify"]}"', "reported", f"verify {part['verify']} is empty: no check")
            elif content is not None:
                body, bash = _strip_shebang(content)
                rewritten, found = rewrite_script(body, env)
                self.findings(part["verify"], found, 2 if content.startswith("#!") else 1)
                for match in SYSTEM_FILE_TEST.finditer(rewritten):
                    self.report.add(part["verify"], line_of(rewritten, match.group(0)) + (1 if content.startswith("#!") else 0), "cannot-run",
                                    f"the check looks for {match.group('path')}, which the learner cannot make (only the home and /tmp are writable)")
                if bash:
                    self.report.add(part["verify"], 1, "mapped", "verify is a bash script: it runs with bash (/bin/bash in the lesson images)")
                    rewritten = run_with_bash(rewritten)
                step.check, step.timeout = _check_from_verify(rewritten, step.title or f"step {number}")
                self.at(f'"{part["verify"]}"', "mapped", f"verify {part['verify']} -> check (exit 0 = passed; a failure adds a sentence for the learner)")
        if part.get("answer"):
            content = self.read(part["answer"], f"{role} answer", f'"{part["answer"]}"')
            if content is not None:
                codes, found = solution_from(content, env)
                self.findings(part["answer"], found)
                step.solution += codes
                self.at(f'"{part["answer"]}"', "mapped" if codes else "reported",
                        f"answer {part['answer']} -> the solution ({len(codes)} code block(s))" if codes else f"answer {part['answer']} has no code: not a solution script")
        step.setup += converted.setup
        step.solution = converted.solution + step.solution
        step.cannot = [Finding(i.line, i.kind, i.reason) for i in self.report.items[reported_before:] if i.kind == "cannot-run"]
        return step

    def map(self) -> Draft:
        self.top_keys()
        title = str(self.index.get("title") or self.scenario.name)
        self.at('"title"', "mapped", f"title -> lesson.md title: {title}")
        summary = str(self.index.get("description") or "").strip()
        if summary:
            self.at('"description"', "mapped", "description -> lesson.md summary")
        else:
            summary = title
            self.report.add("index.json", 1, "reported", "no description: the summary is the title")
        entries, moved = self.asset_targets()
        workspace = self.workspace()
        env = Environment(workspace, moved)
        for source, target in moved:
            self.report.add("index.json", line_of(self.text, source), "rewritten", f"assets go to {source}, which the learner cannot write: moved to {target}, and every mention with it")
        editor_root = "$HOME"
        environment = self.index.get("environment")
        if isinstance(environment, dict) and environment.get("uieditorpath"):
            editor_root, _ = rewrite_script(str(environment["uieditorpath"]), env)
            self.at('"uieditorpath"', "mapped", f"environment.uieditorpath {environment['uieditorpath']} -> editor blocks write under {editor_root}")
        details = self.details()

        first_setup = []
        assets_script = self.asset_setup(entries, env)
        if assets_script:
            first_setup.append(assets_script)
        intro = details.get("intro") if isinstance(details.get("intro"), dict) else {}
        intro_body = ""
        if intro:
            intro_step = self.part(intro, "intro", 0, env, editor_root)
            converted = intro_step.converted
            intro_body = converted.body
            self.at('"intro"', "mapped", "details.intro.text -> lesson.md introduction")
            if intro.get("title"):
                self.at('"intro"', "reported", f"intro title {intro['title']!r}: the introduction has no title here")
            first_setup += intro_step.setup
            if converted.hints or converted.solution or converted.questions or intro_step.check:
                self.at('"intro"', "reported", "the introduction's hints, solution, quiz or verify: not mapped (the introduction is text only)")
            if intro_step.cannot:
                intro_body = self.mark(intro_body, intro_step.cannot)

        steps = []
        for number, part in enumerate(details.get("steps") or [], start=1):
            if not isinstance(part, dict):
                self.at('"steps"', "reported", f"step {number} is not an object: skipped")
                continue
            steps.append(self.part(part, "step", number, env, editor_root))
        if steps:
            self.at('"steps"', "mapped", f"details.steps: {len(steps)} step(s) -> steps/NN-slug.md, in order")
        finish = details.get("finish") if isinstance(details.get("finish"), dict) else None
        if finish:
            finish_step = self.part(finish, "finish", len(steps) + 1, env, editor_root)
            finish_step.title = finish_step.title or "Finish"
            finish_step.slug = "finish"
            if finish_step.setup:
                self.at('"finish"', "reported", "the finish's background script: not run here (nothing follows the last step)")
                finish_step.setup = []
            if finish_step.converted.body.strip():
                steps.append(finish_step)
                self.at('"finish"', "mapped", "details.finish.text -> a last reading step")
        if not steps:
            self.report.add("index.json", 1, "reported", "no steps: a lesson needs one, so the introduction became its only step")
            steps.append(_Part(convert(intro_body or title, env), "", title))
        if first_setup:
            steps[0].setup = first_setup + steps[0].setup
            steps[0].timeout = max(steps[0].timeout or 0, 60)

        self.files["lesson.md"] = front_matter(self.lesson_meta(title, summary, workspace, len(steps)), intro_body)
        seen: set[str] = set()
        for number, step in enumerate(steps, start=1):
            self.write_step(number, step, seen)
        return Draft(self.slug, title, workspace, self.files, self.scenario.license, self.report, str(self.scenario.root))

    def lesson_meta(self, title: str, summary: str, workspace: str, step_count: int) -> dict:
        minutes = None
        time = self.index.get("time")
        if time:
            numbers = [int(n) for n in re.findall(r"\d+", str(time))]
            minutes = max(numbers) if numbers else None
        if minutes is None:
            minutes = max(10, 5 * step_count)
            self.report.add("index.json", 1, "reported", f"no time given: minutes estimated as {minutes} (5 per step)")
        self.report.add("index.json", 1, "mapped", f"order {self.order} (import_scenario --order), image {WORKSPACE_IMAGES[workspace]}")
        meta = {"title": title, "summary": " ".join(summary.split()), "workspace": workspace, "image": WORKSPACE_IMAGES[workspace],
                "minutes": minutes, "order": self.order}
        if self.prerequisites:
            meta["prerequisites"] = list(self.prerequisites)
            self.report.add("structure.json", 1, "mapped", f"course position -> prerequisites {', '.join(self.prerequisites)}")
        return meta

    def mark(self, body: str, findings: list[Finding]) -> str:
        if body.startswith(MARK):
            return body  # marked by an earlier import already
        reasons = []
        for finding in findings:
            if finding.kind == "cannot-run":
                reason = finding.reason.split(": ", 1)[-1]
                if reason not in reasons:
                    reasons.append(reason)
        note = f"{MARK} parts of this step cannot run in the classroom (see IMPORT_REPORT.md): " + "; ".join(reasons[:3]) + "."
        return f"{note}\n\n{body}"

    def write_step(self, number: int, step: _Part, seen: set[str]) -> None:
        converted = step.converted
        text_name = step.text_name
        title = step.title or f"Step {number}"
        parent = Path(text_name).parent.name if text_name else ""
        named = re.match(r"^\d+-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)$", parent)
        slug = step.slug or (named.group("slug") if named else slugify(title))
        while slug in seen:
            slug = f"{slug}-{number}"
        seen.add(slug)
        file = f"steps/{number:02d}-{slug}.md"
        where = text_name or "index.json"
        meta: dict = {"title": title}
        body = converted.body
        hints = list(converted.hints)
        hints += [f"Solution: {text}" for text in converted.solution_texts if text]
        check = step.check
        solution = "\n".join(code.rstrip("\n") for code in step.solution).strip("\n")
        if converted.questions and not check:
            meta["type"] = "quiz"
            meta["questions"] = converted.questions
        elif converted.questions:
            self.report.add(where, 1, "reported", "a quiz in a step with a verify script: a step here is a task or a quiz; the questions are kept as text")
            body += "\n\n" + "\n\n".join(f"**{q['prompt']}** ({', '.join(q.get('choices') or q.get('answer_text'))})" for q in converted.questions)
        if check:
            meta["check"] = check
            if solution:
                meta["solution"] = solution + "\n"
            else:
                meta["solution"] = FAILING_SOLUTION
                self.report.add(where, 1, "reported", "the step has a verify script but no solution in the scenario: its solution fails on purpose until one is written (the lesson tests point here)")
        elif solution:
            body += "\n\n**Solution**\n\n" + _block_run(solution)
            self.report.add(where, 1, "reported", "a solution without a verify script: nothing checks the step here, so the solution stays in the text")
        if hints:
            meta["hints"] = hints
        setup = "\n".join(s.rstrip("\n") for s in step.setup if s.strip()).strip("\n")
        if setup:
            meta["setup"] = setup + "\n"
        if step.timeout:
            meta["timeout"] = min(int(step.timeout), 300)
        if step.cannot:
            body = self.mark(body, step.cannot)
        if not body.strip():
            body = f"{title}."
            self.report.add(where, 1, "reported", "the step has no text: its title is its text")
        self.files[file] = front_matter(meta, body)


def _block_run(code: str) -> str:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`{3,}", code)), default=2) + 1)
    return f"{fence}run\n{code}\n{fence}"


def map_scenario(scenario: Scenario, *, order: int = 1000, slug: str | None = None, prerequisites: tuple[str, ...] = ()) -> Draft:
    return _Mapper(scenario, order, slug, prerequisites).map()


def report_text(draft: Draft, variant: str) -> str:
    preface = (f"Imported from `{draft.source}` ({variant} format) into `{draft.slug}/`, workspace {draft.workspace}.\n"
               "Each line names the scenario file and line, what happened to it, and why. "
               "Lines marked cannot-run name things this classroom cannot do; the step's text says so too.")
    return draft.report.render(f"Import report: {draft.title}", preface)
