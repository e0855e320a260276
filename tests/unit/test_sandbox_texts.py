"""The server's own texts that cross a boundary (a saved stop reason, a notice on the channel
layer, a websocket close reason) are sent in English and read in each reader's language."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from sandbox import protocol, texts

HAN = re.compile(r"[\u4e00-\u9fff]")


def _zh(text: str) -> str:
    with translation.override("zh-hans"):
        return texts.translate(text)


@pytest.mark.parametrize("msgid", sorted(texts.PLAIN))
def test_every_plain_text_reads_in_chinese(msgid):
    assert HAN.search(_zh(msgid)), msgid


@pytest.mark.parametrize("msgid", texts.WITH_VALUES)
def test_a_text_with_values_is_recognised_and_keeps_its_values(msgid):
    values = {name: (42 if kind == "d" else "Lin Wei") for name, kind in re.findall(r"%\((\w+)\)([ds])", msgid)}
    english = texts.render(msgid, **values)
    chinese = _zh(english)
    assert HAN.search(chinese) and chinese != english
    for value in values.values():
        assert str(value) in chinese


def test_notices_and_reasons_the_instructor_and_reaper_send_are_recognised():
    assert _zh(texts.render(texts.NOTICE_EXTENDED, minutes=15)) == "你的讲师为全班延长了 15 分钟。"
    assert _zh(texts.render(texts.NOTICE_TOOK_CONTROL, name="李老师")) == "你的讲师 李老师 接管了这个终端，可能会在其中输入。"
    assert _zh(protocol.CLOSE_CODES[protocol.CLOSE_NOT_YOURS].reason) == "这个终端不是你的。"


def test_free_text_is_shown_as_it_is():
    # An instructor's broadcast or an engine's own error: nothing to translate.
    assert _zh("Please look at the projector") == "Please look at the projector"
    assert _zh("") == ""


def test_english_readers_read_the_english():
    with translation.override("en"):
        assert texts.translate(texts.TIME_UP) == texts.TIME_UP


@pytest.mark.parametrize("headers, language", [
    ([(b"accept-language", b"zh-CN,zh;q=0.9,en;q=0.8")], "zh-hans"),
    ([(b"accept-language", b"en-GB,en;q=0.9")], "en"),
    # The language the reader chose on the site wins over the browser's.
    ([(b"cookie", b"sessionid=x; django_language=zh-hans"), (b"accept-language", b"en")], "zh-hans"),
    ([], "en"),
])
def test_the_viewers_language_comes_from_the_handshake(headers, language):
    assert texts.viewer_language({"headers": headers}) == language
