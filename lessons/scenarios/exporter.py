"""A lesson folder -> a Killercoda scenario folder, with EXPORT_REPORT.md naming what does not map.

- ``lesson.md``: title -> ``title``, summary -> ``description``, the introduction -> ``intro.md``,
  workspace -> ``backend.imageid`` (kubernetes -> ``kubernetes-kubeadm-1node``, else ``ubuntu``).
- Each step -> ``NN-slug/text.md`` (the folder keeps the step's slug for a later import);
  ``check`` -> ``NN-slug/verify.sh``, whose first line marks it as printing its own feedback and
  carries the timeout; ``setup`` -> ``NN-slug/background.sh``.
- ``run`` blocks -> code + ``{{exec}}``, ``copy`` blocks -> code + ``{{copy}}``; hints -> one
  ``<details><summary>Hint N</summary>`` each; the solution -> ``<details><summary>Solution``.
- Quiz steps: Killercoda has no quiz, so the questions are written in Katacoda's quiz syntax
  (which an import reads back) and reported.

Pure Python: the lesson's files are read directly (YAML front matter), not through the loader.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import yaml

from .mapper import EXPORTED_CHECK_MARKER
from .report import Report, line_of

REPORT_NAME = "EXPORT_REPORT.md"
STEP_FILE = re.compile(r"^(?P<number>\d+)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
DEFAULT_TIMEOUT = 20
NOT_MAPPED_LESSON_KEYS = {
    "minutes": "Killercoda shows no duration",
    "order": "Killercoda orders scenarios in structure.json",
    "prerequisites": "Killercoda has no prerequisites",
    "learned": "Killercoda has no \"what you learned\" list (write it into the finish text)",
    "sandbox": "Killercoda sets its own time limits",
    "image": "Killercoda picks the machine from backend.imageid",
}


@dataclasses.dataclass(frozen=True)
class Exported:
    folder: Path
    report: Report


def _document(path: Path) -> tuple[dict, str, str]:
    """(front matter, body, whole text) of a lesson file."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise ValueError(f"{path}:1: front matter must start with a '---' line")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise ValueError(f"{path}:1: front matter is not closed by a '---' line")
    meta = yaml.safe_load(text[4 : end + 1]) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path}:2: front matter must be a mapping")
    return meta, text[end + 5 :], text


def _script(meta: dict, key: str, folder: Path) -> str:
    if meta.get(f"{key}_file"):
        return (folder / str(meta[f"{key}_file"])).read_text(encoding="utf-8")
    return str(meta.get(key) or "")


def _fence(code: str) -> str:
    return "`" * max(3, max((len(m) for m in re.findall(r"`{3,}", code)), default=2) + 1)


def _markdown(body: str, file: str, source: str, report: Report) -> str:
    """run/copy blocks -> code + {{exec}}/{{copy}}; other Markdown is Killercoda's too."""
    out, lines, i = [], body.split("\n"), 0
    while i < len(lines):
        match = re.match(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>\S*)", lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        fence = match.group("fence")
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$", lines[j]):
            j += 1
        kind = match.group("info").lower()
        block = lines[i : j + 1]
        if kind in ("run", "copy") and j < len(lines):
            annotation = "exec" if kind == "run" else "copy"
            block = [match.group("indent") + fence] + lines[i + 1 : j] + [lines[j].rstrip() + f"{{{{{annotation}}}}}"]
            report.add(file, line_of(source, lines[i]), "mapped", f"`{kind}` block -> code + {{{{{annotation}}}}}")
        out += block
        i = j + 1
    return "\n".join(out)


def _quiz(questions: list, file: str, report: Report) -> str:
    blocks = []
    for number, question in enumerate(questions, start=1):
        if not isinstance(question, dict):
            continue
        lines = [f">>Q{number}: {question.get('prompt', '')}<<"]
        if question.get("choices"):
            answer = str(question.get("answer"))
            texts = [str(choice.get("text", "")) if isinstance(choice, dict) else str(choice) for choice in question["choices"]]
            lines += [f"({'*' if text == answer else ' '}) {text}" for text in texts]
            if any(isinstance(choice, dict) and choice.get("why") for choice in question["choices"]):
                report.add(file, 1, "reported", f"question {number}: the feedback of each wrong choice (why) is not exported: Katacoda's quiz has none")
        else:
            accepted = question.get("answer_text") or []
            accepted = [accepted] if isinstance(accepted, (str, int, float)) else accepted
            lines += [f"=== {answer}" for answer in accepted]
            if len(accepted) > 1:
                report.add(file, 1, "reported", f"question {number}: {len(accepted)} accepted answers written as several === lines (Katacoda accepted one)")
        blocks.append("\n".join(lines))
    report.add(file, 1, "reported", "a quiz: Killercoda has no quizzes, so the questions are written in Katacoda's quiz syntax (shown as text on Killercoda)")
    return "\n\n".join(blocks)


def _classroom_mentions(text: str, file: str, report: Report) -> None:
    for needle, reason in (
        ("$REGISTRY", "$REGISTRY (the classroom registry) has no value on Killercoda: name a public image there"),
        ("127.0.0.1:5000", "127.0.0.1:5000 is the classroom registry, which Killercoda does not have"),
        ("](/lessons/", "a link to another lesson of this site leads nowhere on Killercoda"),
    ):
        if needle in text:
            report.add(file, line_of(text, needle), "reported", reason)


def export_lesson(folder: Path, into: Path, *, replace: bool = False) -> Exported:
    folder = Path(folder)
    report = Report()
    meta, intro, lesson_text = _document(folder / "lesson.md")
    target = Path(into) / folder.name
    if target.exists():
        if not replace:
            raise FileExistsError(f"{target} exists (use --replace to overwrite it)")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files: dict[str, str] = {}

    report.add("lesson.md", line_of(lesson_text, "title:"), "mapped", "title -> title")
    report.add("lesson.md", line_of(lesson_text, "summary:"), "mapped", "summary -> description")
    for key, reason in NOT_MAPPED_LESSON_KEYS.items():
        if key in meta:
            report.add("lesson.md", line_of(lesson_text, f"{key}:"), "reported", f"{key} = {meta[key]}: not exported ({reason})")
    workspace = str(meta.get("workspace", "plain"))
    imageid = "kubernetes-kubeadm-1node" if workspace == "kubernetes" else "ubuntu"
    report.add("lesson.md", line_of(lesson_text, "workspace:"), "mapped", f"workspace {workspace} -> backend.imageid {imageid}"
               + (" (Killercoda's ubuntu has Docker)" if workspace == "docker" else ""))
    for translation in sorted(folder.glob("lesson.*.md")) + sorted((folder / "steps").glob("*.*.md")):
        report.add(str(translation.relative_to(folder)), 1, "reported", "a translation: Killercoda scenarios have one language; not exported")
    files["intro.md"] = _markdown(intro.strip("\n"), "lesson.md", lesson_text, report) + "\n"
    _classroom_mentions(intro, "lesson.md", report)

    steps_json = []
    finish = None
    step_paths = sorted((p for p in (folder / "steps").glob("*.md") if STEP_FILE.match(p.name)), key=lambda p: int(STEP_FILE.match(p.name).group("number")))
    for position, path in enumerate(step_paths, start=1):
        step_meta, body, step_text = _document(path)
        name = f"steps/{path.name}"
        stem = path.stem
        text = _markdown(body.strip("\n"), name, step_text, report)
        _classroom_mentions(step_text, name, report)
        if step_meta.get("type") == "quiz":
            text += "\n\n" + _quiz(step_meta.get("questions") or [], name, report)
        for number, hint in enumerate(step_meta.get("hints") or [], start=1):
            text += f"\n\n<details><summary>Hint {number}</summary>\n\n{hint}\n\n</details>"
            report.add(name, line_of(step_text, "hints:"), "mapped", f"hint {number} -> <details> Hint {number}")
        solution = _script(step_meta, "solution", path.parent).strip("\n")
        if solution:
            fence = _fence(solution)
            text += f"\n\n<details><summary>Solution</summary>\n\n{fence}\n{solution}\n{fence}{{{{exec}}}}\n\n</details>"
            report.add(name, line_of(step_text, "solution"), "mapped", "solution -> <details> Solution (click-to-run)")
        entry: dict = {"title": str(step_meta.get("title", stem))}
        check = _script(step_meta, "check", path.parent)
        setup = _script(step_meta, "setup", path.parent)
        timeout = step_meta.get("timeout", DEFAULT_TIMEOUT)
        is_last = position == len(step_paths)
        if is_last and STEP_FILE.match(path.name).group("slug") == "finish" and not (check or setup or step_meta.get("type") == "quiz" or step_meta.get("hints")):
            files["finish.md"] = text.strip("\n") + "\n"
            finish = {"title": entry["title"], "text": "finish.md"}
            report.add(name, 1, "mapped", "the last reading step `finish` -> details.finish")
            continue
        files[f"{stem}/text.md"] = text.strip("\n") + "\n"
        entry["text"] = f"{stem}/text.md"
        if check:
            files[f"{stem}/verify.sh"] = f"#!/bin/sh\n{EXPORTED_CHECK_MARKER}; timeout={timeout}\n{check.strip(chr(10))}\n"
            entry["verify"] = f"{stem}/verify.sh"
            report.add(name, line_of(step_text, "check"), "mapped", f"check -> {stem}/verify.sh (exit 0 = passed on both; Killercoda runs it as root and ignores the timeout {timeout}s)")
        elif timeout != DEFAULT_TIMEOUT:
            report.add(name, line_of(step_text, "timeout:"), "reported", f"timeout {timeout}s: Killercoda has no timeout for scripts")
        if setup:
            files[f"{stem}/background.sh"] = f"#!/bin/sh\n{setup.strip(chr(10))}\n"
            entry["background"] = f"{stem}/background.sh"
            report.add(name, line_of(step_text, "setup"), "mapped", f"setup -> {stem}/background.sh (Killercoda runs it as root, beside the learner rather than before the step)")
        steps_json.append(entry)

    details: dict = {"intro": {"text": "intro.md"}, "steps": steps_json}
    if finish:
        details["finish"] = finish
    index = {"title": str(meta.get("title", folder.name)), "description": str(meta.get("summary", "")), "details": details, "backend": {"imageid": imageid}}
    files["index.json"] = json.dumps(index, indent=2, ensure_ascii=False) + "\n"
    for name, text in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if name.endswith(".sh"):
            path.chmod(0o755)
    for licence in ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"):
        if (folder / licence).is_file():
            shutil.copyfile(folder / licence, target / licence)
            report.add(licence, 1, "mapped", "licence copied beside the scenario")
            break
    else:
        report.add("lesson.md", 1, "warning", "no LICENSE in the lesson folder: add the licence you publish the scenario under")
    preface = f"Exported from `{folder}` into `{target}` (Killercoda format). Each line names the lesson file and line, and what became of it."
    (target / REPORT_NAME).write_text(report.render(f"Export report: {index['title']}", preface), encoding="utf-8")
    return Exported(target, report)
