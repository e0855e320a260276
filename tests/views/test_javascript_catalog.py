"""The JavaScript catalogue (/jsi18n/): the words of the site's scripts in the reader's language,
and the lesson page loads it before the scripts that call gettext()."""

import json
import re

import pytest

from tests.factories import signed_in_client

LESSON = "what-is-a-container"


def _catalogue(client) -> dict:
    """The msgid -> msgstr table the served script installs (written as JSON inside it)."""
    response = client.get("/jsi18n/")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    match = re.search(r"const newcatalog = (\{.*?\});", response.content.decode(), re.S)
    return json.loads(match.group(1)) if match else {}  # English: no table, gettext() returns the msgid


@pytest.mark.django_db
def test_chinese_reader_gets_the_terminal_and_lesson_words_in_chinese():
    client = signed_in_client()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    catalogue = _catalogue(client)
    assert catalogue["Connected"] == "已连接"
    assert catalogue["Reconnecting…"] == "正在重新连接…"
    assert catalogue["%s left"] == "剩余 %s"
    assert catalogue["▶ Run"] == "▶ 运行"
    assert catalogue["Copy"] == "复制"
    assert catalogue["leave the terminal"] == "离开终端"
    assert catalogue["Starting your sandbox…"] == "正在启动你的沙箱…"


@pytest.mark.django_db
def test_english_reader_gets_no_chinese():
    catalogue = _catalogue(signed_in_client())
    assert "Connected" not in catalogue and "已连接" not in catalogue.values()


@pytest.mark.django_db
def test_chinese_lesson_page_asks_for_the_chinese_catalogue(owner):
    client = signed_in_client(owner)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert 'src="/jsi18n/?lang=zh-hans"' in client.get(f"/lessons/{LESSON}/").content.decode()


@pytest.mark.django_db
def test_lesson_page_loads_the_catalogue_before_its_scripts(owner):
    html = signed_in_client(owner).get(f"/lessons/{LESSON}/").content.decode()
    catalogue = html.index('src="/jsi18n/?lang=en"')
    assert catalogue < html.index("js/terminal.js") and catalogue < html.index("js/lessons.js")
