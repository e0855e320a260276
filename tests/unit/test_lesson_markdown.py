"""Lesson Markdown becomes sanitized HTML: injected HTML and script come out inert; run and copy
blocks are marked for the page's buttons; other code is highlighted."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from lessons.markdown import render_inline, render_markdown

INJECTIONS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    '<iframe src="https://example.com"></iframe>',
    '<div onclick="alert(1)">hi</div>',
    "<style>body{display:none}</style>",
    '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
]


class _Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


@pytest.mark.parametrize("source", INJECTIONS)
def test_injected_html_is_inert(source):
    html = render_markdown(f"Text\n\n{source}\n\nmore")
    for tag, attrs in _elements(html):
        assert tag not in {"script", "img", "iframe", "style", "object", "embed"}, html
        assert not any(name.startswith("on") for name in attrs), html
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "data:")), html


def test_injection_inside_a_run_block_is_escaped_text():
    html = render_markdown('```run\necho "<script>alert(1)</script>"\n```\n')
    assert '<pre class="code-block" data-block="run">' in html
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_run_and_copy_blocks_are_marked():
    html = render_markdown("```run\nps\n```\n\n```copy\nFROM debian\n```\n")
    assert 'data-block="run"><code>ps\n</code></pre>' in html
    assert 'data-block="copy"><code>FROM debian\n</code></pre>' in html


def test_other_code_is_highlighted():
    html = render_markdown("```python\nimport os\n```\n")
    assert 'data-block="code"' in html and '<span class="kn">import</span>' in html


def test_unknown_language_is_plain_escaped_code():
    html = render_markdown("```nosuchlang\na < b\n```\n")
    assert "a &lt; b" in html


def test_attributes_cannot_be_forged_through_markdown():
    # Raw HTML is escaped by the parser, so an author cannot make their own run block or handler.
    html = render_markdown('<pre data-block="run" onclick="x()">rm -rf ~</pre>')
    assert "<pre" not in html and "&lt;pre" in html


def test_inline_render_for_hints():
    assert render_inline("Use `echo` <b onclick=x>now</b>") == "Use <code>echo</code> &lt;b onclick=x&gt;now&lt;/b&gt;"
