"""A lesson with no Chinese text yet, on Chinese pages: the catalogue and the lesson page say it is
in English, and its English is marked lang="en" (screen readers switch voice, browsers fonts);
translated lessons carry no such mark."""

import re
import shutil
from pathlib import Path

import pytest

from lessons.catalogue import get_lesson
from tests.factories import signed_in_client

# Every lesson of the curriculum is translated: the untranslated one is an English-only copy of
# one, in a folder of extra lessons (LESSON_DIRS), as an instructor's own lesson would be.
UNTRANSLATED = "english-only"
TRANSLATED = "what-is-a-container"
CONTENT = Path(__file__).resolve().parents[2] / "lessons" / "content"


@pytest.fixture(autouse=True)
def english_only_lesson(tmp_path, settings):
    copy = tmp_path / UNTRANSLATED
    shutil.copytree(CONTENT / "containers", copy, ignore=shutil.ignore_patterns("*.zh-hans.md"))
    front = copy / "lesson.md"
    front.write_text(re.sub(r"^order: .*$", "order: 9999", front.read_text(), count=1, flags=re.M))
    settings.LESSON_DIRS = [str(tmp_path)]


def _chinese(user):
    client = signed_in_client(user)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    return client


def _card(html: str, slug: str) -> str:
    return re.search(rf'<li class="lesson-card" data-lesson="{slug}">(.*?)</li>', html, re.S).group(1)


def test_the_lessons_are_as_this_test_expects():
    assert "zh-hans" not in get_lesson(UNTRANSLATED).languages
    assert "zh-hans" in get_lesson(TRANSLATED).languages


@pytest.mark.django_db
def test_catalogue_labels_the_untranslated_lesson_and_marks_its_english(owner):
    html = _chinese(owner).get("/").content.decode()
    untranslated, translated = _card(html, UNTRANSLATED), _card(html, TRANSLATED)
    assert '<div class="lesson-blurb" lang="en">' in untranslated and "尚未翻译" in untranslated
    assert "lang=" not in translated and "尚未翻译" not in translated


@pytest.mark.django_db
def test_untranslated_lesson_page_says_so_and_marks_the_lesson_text(owner):
    html = _chinese(owner).get(f"/lessons/{UNTRANSLATED}/").content.decode()
    assert "data-untranslated" in html and "这一课尚未翻译" in html
    assert '<div class="step-body" lang="en">' in html
    assert re.search(r'<h1 class="step-title" id="step-title">第 1 步：<span lang="en">', html)


@pytest.mark.django_db
def test_translated_lesson_page_has_no_english_marks(owner):
    html = _chinese(owner).get(f"/lessons/{TRANSLATED}/").content.decode()
    assert "data-untranslated" not in html
    assert '<div class="step-body">' in html


@pytest.mark.django_db
def test_english_pages_mark_nothing(owner):
    html = signed_in_client(owner).get(f"/lessons/{UNTRANSLATED}/").content.decode()
    assert "data-untranslated" not in html and '<div class="step-body">' in html
