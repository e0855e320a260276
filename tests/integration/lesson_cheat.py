"""A learner who copies text instead of doing the task: every check must fail for them.

For one lesson, in one real sandbox, step by step in order (as ``test_lessons_solutions`` does):
run the step's setup, press Check once (its failing feedback is something a learner reads), then
run a cheat made only of text the learner can see: it prints every string of the step's text,
title, hints, solution and feedback (original and translations, plus the feedback just shown, and
all of that for the earlier steps, with what their checks printed), and writes all of that text
into every ``~/file`` the texts name. Then it writes each value the feedback shows (in quotes or
brackets, or after a colon; before and after the copied text) alone into those files, checking
after each. The check must fail every time, and no part of it may pass: no line that the passing
check prints (after the solution) may appear after a cheat when it did not before. The files are
then put back as they were, the solution runs and the check must pass, so the next step starts
from the state a real learner would have.
"""

from __future__ import annotations

import re
import shlex

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from lessons.checks import run_check, run_setup
from lessons.front_matter import parse_document
from lessons.lesson import Lesson, Step
from sandbox import services as sandbox_services
from sandbox import tasks
from sandbox.models import Sandbox

# ~/name or ~/dir/name, as lesson texts name the learner's files.
HOME_FILE_RE = re.compile(r"~/((?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*[A-Za-z0-9_])")
# What a learner would lift out of a feedback line: 'quoted', (bracketed), or the text after ": ".
VALUE_RES = (re.compile(r"'([^']{2,200})'"), re.compile(r"\(([^()]{2,200})\)"), re.compile(r":\s+(\S.{1,200})$"))
MAX_VALUES = 12


def step_texts(step: Step) -> list[str]:
    """Every string the learner can read about the step, in every language, as written."""
    texts = []
    for path in [step.path, *(step.path.with_name(f"{step.path.stem}.{lang}.md") for lang in step.translations)]:
        doc = parse_document(path.read_text(encoding="utf-8"), path)
        texts.append(doc.body)
        for key in ("title",):
            if isinstance(doc.meta.get(key), str):
                texts.append(doc.meta[key])
        hints = doc.meta.get("hints") or []
        texts += [hints] if isinstance(hints, str) else [str(h) for h in hints]
        feedback = doc.meta.get("feedback") or {}
        if isinstance(feedback, dict):
            texts += [str(k) for k in feedback] + [str(v) for v in feedback.values()]
    texts.append(step.solution)
    texts += re.findall(r'echo\s+"([^"]+)"', step.check) + re.findall(r"echo\s+'([^']+)'", step.check)
    return [t for t in texts if t.strip()]


def named_files(texts: list[str]) -> list[str]:
    names = {m.group(1) for text in texts for m in HOME_FILE_RE.finditer(text)}
    return sorted(n for n in names if not n.startswith("."))


def feedback_values(feedback: str) -> list[str]:
    values: list[str] = []
    for line in feedback.splitlines():
        for pattern in VALUE_RES:
            for match in pattern.finditer(line.strip()):
                value = match.group(1).strip().rstrip(".")
                if value and value not in values:
                    values.append(value)
    return values[:MAX_VALUES]


def part_lines_earned(fresh: str, cheated: str, passing: str) -> list[str]:
    before = {line.strip() for line in fresh.splitlines()}
    after = {line.strip() for line in passing.splitlines()}
    return [line.strip() for line in cheated.splitlines() if line.strip() and line.strip() in after and line.strip() not in before]


def _write_all(files: list[str], content: str) -> str:
    quoted = shlex.quote(content)
    # Only where a file can be written as it is (no folders are made: a later solution may make them).
    return "".join(f'printf "%s\\n" {quoted} > ~/{shlex.quote(f)} 2>/dev/null\n' for f in files)


def backup_script(files: list[str]) -> str:
    lines = ["rm -rf ~/.cheat-backup; mkdir -p ~/.cheat-backup"]
    for index, name in enumerate(files):
        lines.append(f"[ -e ~/{shlex.quote(name)} ] && cp -a ~/{shlex.quote(name)} ~/.cheat-backup/{index}")
    return "\n".join(lines) + "\ntrue\n"


def restore_script(files: list[str]) -> str:
    lines = []
    for index, name in enumerate(files):
        target = f"~/{shlex.quote(name)}"
        lines.append(f"rm -rf {target}; [ -e ~/.cheat-backup/{index} ] && cp -a ~/.cheat-backup/{index} {target}")
    return "\n".join(lines) + f"\nrm -rf ~/.cheat-backup {BLOB}\ntrue\n"


BLOB = "~/.cheat-copied-text"
CHUNK = 32 * 1024  # a script is one exec argument, and one argument may hold at most 128 KiB


def blob_scripts(texts: list[str]) -> list[str]:
    """Scripts that put all the texts into one file in the sandbox, a piece at a time."""
    blob = "\n".join(texts) + "\n"
    pieces = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)]
    return [f": > {BLOB}\n"] + [f"printf '%s' {shlex.quote(piece)} >> {BLOB}\n" for piece in pieces]


def echo_script(files: list[str]) -> str:
    """Print every text (nothing in them runs) and write all of it into the named files."""
    return f"cat {BLOB}\n" + "".join(f"cat {BLOB} > ~/{shlex.quote(f)} 2>/dev/null\n" for f in files) + "true\n"


async def _run(sandbox: Sandbox, script: str, seconds: int = 60):
    return await sandbox_services.run_script(sandbox, script, timeout=seconds)


async def cheat_every_step(lesson: Lesson, ensure_image, labelled_leftovers=None) -> list[str]:
    """Run the cheat on every checked step of ``lesson``; returns the steps a cheat passed."""
    learner = await sync_to_async(get_user_model().objects.create_user)(username=f"cheat-{lesson.slug}"[:150])
    sandbox: Sandbox | None = None
    passed_by_cheating: list[str] = []
    checked = 0
    seen: list[str] = []  # what the learner read in the earlier steps, their checks' output included
    try:
        for step in lesson.steps:
            if step.is_quiz or not step.check:
                continue
            where = f"{lesson.slug}/{step.path.name}"
            if sandbox is None:
                await ensure_image(lesson.image)
                sandbox = await sandbox_services.start_sandbox(learner, lesson.slug, lesson.workspace, lesson.image)
                assert sandbox.state == Sandbox.State.RUNNING, f"{lesson.slug}: sandbox did not start: {sandbox.failure_reason}"
            await run_setup(sandbox, step)
            shown = await run_check(sandbox, step)
            assert not shown.passed, f"{where}: the check passes before anything was done"
            texts = [*seen, *step_texts(step), shown.feedback]
            files = named_files(texts)
            result = await _run(sandbox, backup_script(files))
            assert result.exit_code == 0, f"{where}: could not back up {files}: {result.output}"
            for script in blob_scripts(texts):
                written = await _run(sandbox, script)
                assert written.exit_code == 0, f"{where}: could not copy the texts: {written}"
            copied = await _run(sandbox, echo_script(files))
            assert copied.exit_code == 0 and texts[0].strip()[:60] in copied.output, f"{where}: the copy did not run: {copied}"
            cheats = [("echoing its texts", await run_check(sandbox, step))]
            if files and not cheats[0][1].passed:
                # What the check said to the copied text counts too: a learner presses Check again.
                for value in feedback_values(shown.feedback + "\n" + cheats[0][1].feedback):
                    await _run(sandbox, _write_all(files, value))
                    cheats.append((f"writing {value!r}, shown in its feedback", await run_check(sandbox, step)))
                    if cheats[-1][1].passed:
                        break
            await _run(sandbox, restore_script(files))
            solution = await _run(sandbox, step.solution, max(step.timeout, 60))
            assert not solution.timed_out and solution.exit_code == 0, f"{where}: the solution failed after the cheat: {solution}"
            after = await run_check(sandbox, step)
            assert after.passed, f"{where}: the check must pass after the solution; got {after}"
            seen += [*step_texts(step), shown.feedback, after.feedback]
            for how, cheated in cheats:
                if cheated.passed:
                    passed_by_cheating.append(f"{where}: passed after {how} into {files}: {cheated.feedback.strip()[:200]}")
                    break
                # A check of several parts fails as a whole while one part passes: a line the
                # passing check prints, that the fresh check did not, was earned by the cheat.
                earned = part_lines_earned(shown.feedback, cheated.feedback, after.feedback)
                if earned:
                    passed_by_cheating.append(f"{where}: a part passed after {how} into {files}: {earned}")
                    break
            checked += 1
    finally:
        if sandbox is not None:
            await sandbox_services.stop_sandbox(sandbox)
            await tasks.wait_for_background()
            if labelled_leftovers is not None:
                assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
    assert checked, f"{lesson.slug}: no step with a check"
    return passed_by_cheating
