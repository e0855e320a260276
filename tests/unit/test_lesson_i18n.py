"""Translations: the Simplified Chinese catalogue is complete and compiled, and lessons 0 and 1
carry a translation of every step."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from lessons.catalogue import get_lesson

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _po_entries() -> dict[str, str]:
    entries = {}
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        msgid = re.search(r'^msgid ((?:".*"\n)+)', block + "\n", re.M)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block + "\n", re.M)
        if msgid and msgstr:
            key = "".join(re.findall(r'"(.*)"', msgid.group(1)))
            if key:
                entries[key] = "".join(re.findall(r'"(.*)"', msgstr.group(1)))
    return entries


def test_every_message_is_translated():
    missing = [key for key, value in _po_entries().items() if not value]
    assert missing == []


def test_the_compiled_catalogue_matches_the_po_file():
    with open(PO.with_suffix(".mo"), "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for key, value in _po_entries().items():
        if "%(minutes)s" in key:
            continue
        assert compiled.gettext(key.replace('\\"', '"')) == value.replace('\\"', '"'), key


@pytest.mark.parametrize("slug", ["big-picture", "what-is-a-container"])
def test_lessons_zero_and_one_are_translated_step_by_step(slug):
    lesson = get_lesson(slug)
    assert "zh-hans" in lesson.translations
    for step in lesson.steps:
        assert "zh-hans" in step.translations, step.path
        with translation.override("zh-hans"):
            assert step.title != step.text.title or step.slug == "capabilities"
            assert len(step.hints) == len(step.text.hints)
    with translation.override("zh-hans"):
        assert re.search(r"[\u4e00-\u9fff]", lesson.title)


def test_unknown_language_falls_back_to_the_original():
    lesson = get_lesson("big-picture")
    with translation.override("fr"):
        assert lesson.title == lesson.text.title
