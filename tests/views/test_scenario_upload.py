"""The scenario upload page: only instructors import; a scenario zip becomes a lesson in a
LESSON_DIRS folder and is in the catalogue at once, with its import report on the page; a zip
that could harm the machine, a lesson name already taken, or a scenario whose lesson does not
validate writes nothing, and the page says why."""

from __future__ import annotations

import io
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db

URL = "/classrooms/import/"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "scenarios" / "killercoda-docker"
SLUG = "killercoda-docker"


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, target)
    return buffer.getvalue()


def _fixture_members(folder: Path = FIXTURE, prefix: str = SLUG) -> dict[str, bytes]:
    return {f"{prefix}/{path.relative_to(folder).as_posix()}": path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def lesson_dir(settings, tmp_path):
    folder = tmp_path / "lessons"
    folder.mkdir()
    settings.LESSON_DIRS = [str(folder)]
    return folder


def _upload(client, data: bytes, *, replace: bool = False, name: str = "scenario.zip"):
    form = {"scenario": _named(data, name), "destination": "0"}
    if replace:
        form["replace"] = "1"
    return client.post(URL, form)


def _named(data: bytes, name: str):
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_learner_is_refused_and_a_visitor_must_sign_in(owner, lesson_dir):
    assert signed_in_client(owner).get(URL).status_code == 403
    assert signed_in_client(owner).post(URL, {"scenario": _named(_zip(_fixture_members()), "s.zip"), "destination": "0"}).status_code == 403
    assert _tree(lesson_dir) == []
    anonymous = signed_in_client().get(URL)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]


def test_the_classrooms_page_links_the_import_page_for_instructors(instructor, owner):
    assert URL in signed_in_client(instructor).get("/classrooms/").content.decode()
    assert URL not in signed_in_client(owner).get("/classrooms/").content.decode()


def test_without_a_writable_lesson_folder_the_page_says_how_to_configure_one(instructor, settings):
    settings.LESSON_DIRS = []
    page = signed_in_client(instructor).get(URL).content.decode()
    assert "TUTORIAL_LESSON_DIRS" in page
    assert "<fieldset disabled>" in page


def test_an_instructors_scenario_zip_becomes_a_lesson_in_the_catalogue_with_its_report(instructor, owner, lesson_dir):
    client = signed_in_client(instructor)
    assert "Serve a page from a container" not in client.get("/").content.decode()
    response = _upload(client, _zip(_fixture_members()), name="docker-scenario.zip")
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "Imported 1 lesson into" in page
    assert "Import report: Serve a page from a container" in page
    assert "unknown key &#x27;x-unknown-key&#x27; in index.json: not mapped" in page  # a report line, escaped
    assert (lesson_dir / SLUG / "lesson.md").is_file()
    report = (lesson_dir / SLUG / "IMPORT_REPORT.md").read_text()
    assert "docker-scenario.zip" in report and "/tmp" not in report.split("\n", 3)[2]
    # Listed at once, for everyone.
    assert "Serve a page from a container" in signed_in_client(owner).get("/").content.decode()
    assert signed_in_client(owner).get(f"/lessons/{SLUG}/about/").status_code == 200


def test_report_text_from_the_scenario_is_escaped(instructor, lesson_dir):
    members = _fixture_members()
    index = json.loads(members[f"{SLUG}/index.json"])
    index["title"] = "<script>alert(1)</script> title"
    members[f"{SLUG}/index.json"] = json.dumps(index).encode()
    page = _upload(signed_in_client(instructor), _zip(members)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; title" in page


@pytest.mark.parametrize("bad_member", ["../evil", f"{SLUG}/../../evil", "/tmp/evil"])
def test_a_zip_with_a_member_outside_its_folder_is_refused_and_nothing_is_written(instructor, lesson_dir, tmp_path, bad_member):
    members = {**_fixture_members(), bad_member: b"owned"}
    response = _upload(signed_in_client(instructor), _zip(members))
    assert response.status_code == 400
    assert "The zip is refused" in response.content.decode()
    assert _tree(lesson_dir) == []
    assert not (tmp_path / "evil").exists() and not (lesson_dir.parent.parent / "evil").exists()


def test_a_zip_with_a_symlink_is_refused(instructor, lesson_dir):
    response = _upload(signed_in_client(instructor), _zip(_fixture_members(), symlinks={f"{SLUG}/step1/text.md.link": "/etc/passwd"}))
    assert response.status_code == 400
    assert "symlink" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_a_zip_over_the_size_limit_is_refused(instructor, lesson_dir, settings):
    data = _zip(_fixture_members())
    settings.SCENARIO_UPLOAD_MAX_BYTES = len(data) - 1
    response = _upload(signed_in_client(instructor), data)
    assert response.status_code == 400
    assert "larger than" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_a_zip_bomb_is_refused_by_its_unpacked_size(instructor, lesson_dir, settings):
    settings.SCENARIO_UPLOAD_MAX_UNPACKED_BYTES = 1024 * 1024
    data = _zip({**_fixture_members(), f"{SLUG}/zeros": b"\0" * (2 * 1024 * 1024)})
    assert len(data) < 100 * 1024  # small on the wire
    response = _upload(signed_in_client(instructor), data)
    assert response.status_code == 400
    assert "unpacks to more than" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_a_zip_with_too_many_files_is_refused(instructor, lesson_dir, settings):
    settings.SCENARIO_UPLOAD_MAX_FILES = 30
    members = {**_fixture_members(), **{f"{SLUG}/many/{n}.txt": b"x" for n in range(40)}}
    response = _upload(signed_in_client(instructor), _zip(members))
    assert response.status_code == 400
    assert "at most 30 are accepted" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_an_existing_lesson_is_replaced_only_when_asked(instructor, lesson_dir):
    client = signed_in_client(instructor)
    assert _upload(client, _zip(_fixture_members())).status_code == 200
    (lesson_dir / SLUG / "marker").write_text("kept until replaced")
    before = _tree(lesson_dir)

    refused = _upload(client, _zip(_fixture_members()))
    assert refused.status_code == 400
    assert "tick “Replace”" in refused.content.decode()
    assert _tree(lesson_dir) == before

    replaced = _upload(client, _zip(_fixture_members()), replace=True)
    assert replaced.status_code == 200, replaced.content.decode()
    assert not (lesson_dir / SLUG / "marker").exists()
    assert (lesson_dir / SLUG / "lesson.md").is_file()
    assert [p.name for p in lesson_dir.iterdir()] == [SLUG]  # nothing left aside


def test_a_built_in_lesson_is_never_replaced(instructor, lesson_dir):
    members = _fixture_members(prefix="what-is-a-container")
    response = _upload(signed_in_client(instructor), _zip(members), replace=True)
    assert response.status_code == 400
    assert "built-in lessons are never replaced" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_a_scenario_whose_lesson_does_not_validate_shows_the_problems_and_writes_nothing(instructor, owner, lesson_dir, tmp_path):
    source = tmp_path / "source" / SLUG
    shutil.copytree(FIXTURE, source)
    # A prerequisite no lesson has: the loader refuses the lesson, the importer does not care.
    index = json.loads((source / "index.json").read_text())
    index["details"]["intro"]["text"] = "intro/text.md"
    (source / "intro" / "text.md").write_text("See [the basics](/lessons/no-such-lesson/) first.\n")
    (source / "index.json").write_text(json.dumps(index))
    response = _upload(signed_in_client(instructor), _zip(_fixture_members(source)))
    page = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was written" in page
    assert "no-such-lesson" in page and f"{SLUG}/lesson.md:" in page
    assert "Import report: Serve a page from a container" in page
    assert _tree(lesson_dir) == []
    assert signed_in_client(owner).get(f"/lessons/{SLUG}/about/").status_code == 404


def test_something_that_is_not_a_scenario_is_refused(instructor, lesson_dir):
    response = _upload(signed_in_client(instructor), _zip({"notes/readme.txt": b"hello"}))
    assert response.status_code == 400
    assert "This is not a scenario" in response.content.decode()
    response = _upload(signed_in_client(instructor), b"not a zip at all")
    assert response.status_code == 400
    assert "not a zip file" in response.content.decode()
    assert _tree(lesson_dir) == []


def test_the_page_is_in_chinese_for_a_chinese_reader(instructor, lesson_dir):
    client = signed_in_client(instructor)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    page = client.get(URL).content.decode()
    assert "导入场景" in page and "替换该文件夹中同名的课程文件夹" in page
    refused = _upload(client, b"not a zip at all").content.decode()
    assert "该 zip 文件被拒绝" in refused
