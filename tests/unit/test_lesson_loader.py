"""Loading the lessons reads each file once: every process pays for the load at start-up and again
after every edit, and the link checks use the step files already parsed."""

from __future__ import annotations

from collections import Counter

from lessons import loader

LESSON = "---\ntitle: Once\nsummary: s\nworkspace: plain\nminutes: 1\norder: 94\n---\nIntro.\n"
LESSON_ZH = "---\ntitle: 一次\n---\n介绍。\n"
STEPS = {
    "01-look.md": "---\ntitle: Look\n---\nLook around, then go [on](/lessons/read-once/steps/act/).\n",
    "01-look.zh-hans.md": "---\ntitle: 看\n---\n看看。\n",
    "02-act.md": "---\ntitle: Act\ncheck: test -f /tmp/done\nsolution: touch /tmp/done\n---\nAct.\n",
}


def _lesson(tmp_path, steps=STEPS):
    folder = tmp_path / "lessons" / "read-once"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    (folder / "lesson.zh-hans.md").write_text(LESSON_ZH)
    for name, text in steps.items():
        (folder / "steps" / name).write_text(text)
    return folder


def _count_parses(monkeypatch) -> Counter:
    parsed: Counter = Counter()
    real = loader.parse_document

    def counting(text, path):
        parsed[path.name] += 1
        return real(text, path)

    monkeypatch.setattr(loader, "parse_document", counting)
    return parsed


def test_every_lesson_file_is_parsed_once_per_load(tmp_path, monkeypatch):
    _lesson(tmp_path)
    parsed = _count_parses(monkeypatch)

    lessons, problems = loader.load_dirs([tmp_path / "lessons"])

    assert problems == []
    assert [step.slug for step in lessons[0].steps] == ["look", "act"]
    assert parsed == Counter({"lesson.md": 1, "lesson.zh-hans.md": 1, "01-look.md": 1, "01-look.zh-hans.md": 1, "02-act.md": 1})


def test_a_dead_link_in_a_step_is_still_named_with_its_file_and_line(tmp_path, monkeypatch):
    steps = {**STEPS, "02-act.md": STEPS["02-act.md"] + "\nThen [read more](/lessons/nowhere/).\n"}
    folder = _lesson(tmp_path, steps)
    parsed = _count_parses(monkeypatch)

    lessons, problems = loader.load_dirs([tmp_path / "lessons"])

    assert lessons == []
    assert [str(problem) for problem in problems] == [
        f"{folder / 'steps' / '02-act.md'}:8: link to a lesson that does not exist: /lessons/nowhere/"
    ]
    assert parsed["02-act.md"] == 1
