"""An instructor edits a lesson file on disk while the site runs: the next page shows the new text,
no restart needed (each server process notices the changed file; tests/unit covers the timing)."""

import pytest

from lessons import catalogue
from tests.factories import signed_in_client

LESSON = "---\ntitle: {title}\nsummary: x\nworkspace: plain\nminutes: 1\norder: 91\n---\nIntro.\n"
STEP = "---\ntitle: First step\n---\n{text}\n"


@pytest.fixture
def extra_lesson(settings, tmp_path, monkeypatch):
    folder = tmp_path / "extra" / "edited"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON.format(title="Before the edit"))
    (folder / "steps" / "01-first.md").write_text(STEP.format(text="Type ls."))
    settings.LESSON_DIRS = [str(tmp_path / "extra")]
    monkeypatch.setattr(catalogue, "RESCAN_SECONDS", 0)  # look at the files on every request
    return folder


@pytest.mark.django_db
def test_an_edited_step_and_title_are_served_without_a_restart(owner, extra_lesson):
    client = signed_in_client(owner)
    page = client.get("/lessons/edited/").content.decode()
    assert "Before the edit" in page and "Type ls." in page

    (extra_lesson / "lesson.md").write_text(LESSON.format(title="After the edit"))
    (extra_lesson / "steps" / "01-first.md").write_text(STEP.format(text="Type pwd, then ls -la."))
    page = client.get("/lessons/edited/").content.decode()
    assert "After the edit" in page and "Type pwd, then ls -la." in page
    assert "Before the edit" not in page


@pytest.mark.django_db
def test_a_lesson_folder_added_on_disk_is_in_the_catalogue(owner, extra_lesson):
    client = signed_in_client(owner)
    assert "Added later" not in client.get("/").content.decode()
    added = extra_lesson.parent / "added"
    (added / "steps").mkdir(parents=True)
    (added / "lesson.md").write_text(LESSON.format(title="Added later").replace("order: 91", "order: 92"))
    (added / "steps" / "01-first.md").write_text(STEP.format(text="Hello."))
    assert "Added later" in client.get("/").content.decode()
