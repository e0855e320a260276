"""The lessons are parsed once per process and parsed again only when a file changed, looked at
no more often than every RESCAN_SECONDS (a page asks for the lessons many times)."""

from lessons import catalogue

LESSON = "---\ntitle: {title}\nsummary: x\nworkspace: plain\nminutes: 1\norder: 93\n---\nIntro.\n"


def test_an_edit_is_seen_at_the_next_look_and_unchanged_files_are_not_parsed_again(tmp_path, monkeypatch):
    folder = tmp_path / "cached"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON.format(title="One"))
    (folder / "steps" / "01-a.md").write_text("---\ntitle: A\n---\nText.\n")
    parses = []
    real_load = catalogue.load_dirs
    monkeypatch.setattr(catalogue, "load_dirs", lambda dirs: parses.append(dirs) or real_load(dirs))
    catalogue.clear_cache()
    dirs = (tmp_path,)
    start = 1000.0

    assert catalogue.cached_lessons(dirs, now=start)[0].title == "One"
    assert catalogue.cached_lessons(dirs, now=start + 5)[0].title == "One"
    assert len(parses) == 1  # looked again, nothing changed: not parsed again

    (folder / "lesson.md").write_text(LESSON.format(title="Two, a longer title"))
    soon = start + 5 + catalogue.RESCAN_SECONDS / 2
    assert catalogue.cached_lessons(dirs, now=soon)[0].title == "One"  # within the interval
    later = start + 5 + catalogue.RESCAN_SECONDS
    assert catalogue.cached_lessons(dirs, now=later)[0].title == "Two, a longer title"
    assert len(parses) == 2
    catalogue.clear_cache()
