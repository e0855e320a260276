"""Lesson Markdown to sanitized HTML.

Lesson folders may come from instructors (an upload, ``LESSON_DIRS``), so their text is never
trusted: raw HTML is escaped by the parser and everything is sanitized afterwards. Fenced code is
where lessons differ from plain CommonMark: a ``run`` block is click-to-run in the page, a ``copy``
block copy-only, any other language is highlighted.

A leaf: it imports nothing of the project, so the lesson model can render its own text with it.
"""

from __future__ import annotations

import functools
import html

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_formatter = HtmlFormatter(nowrap=True)


def _fence(self, tokens, idx, options, env) -> str:
    """Fenced code: ``run`` blocks are click-to-run, ``copy`` copy-only, others highlighted."""
    token = tokens[idx]
    info = (token.info or "").strip().split()
    kind = info[0].lower() if info else ""
    code = token.content
    if kind in ("run", "copy"):
        return f'<pre class="code-block" data-block="{kind}"><code>{html.escape(code)}</code></pre>\n'
    language = kind
    body = html.escape(code)
    if language:
        try:
            body = highlight(code, get_lexer_by_name(language), _formatter)
        except ClassNotFound:
            pass
    return f'<pre class="code-block highlight" data-block="code"><code>{body}</code></pre>\n'


# Raw HTML in lesson Markdown is escaped by the parser and everything is sanitized afterwards.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_markdown.add_render_rule("fence", _fence)
_markdown.add_render_rule("code_block", lambda self, tokens, idx, options, env: _fence(self, tokens, idx, options, env))

_ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {"pre", "code", "span", "div", "table", "thead", "tbody", "tr", "th", "td"}
_ALLOWED_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ALLOWED_ATTRIBUTES.setdefault("span", set()).add("class")
_ALLOWED_ATTRIBUTES.setdefault("code", set()).add("class")
_ALLOWED_ATTRIBUTES.setdefault("pre", set()).update({"class", "data-block"})
_ALLOWED_ATTRIBUTES.setdefault("th", set()).add("style")
_ALLOWED_ATTRIBUTES.setdefault("td", set()).add("style")


# Rendering is a pure function of the text, and a lesson folder is loaded again whole when any of
# its files changes (an edit, an upload beside it): the unchanged texts come from here.
@functools.lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Markdown to sanitized HTML (lesson folders may come from instructors)."""
    rendered = _markdown.render(text)
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
    )


@functools.lru_cache(maxsize=4096)
def render_inline(text: str) -> str:
    """One line of Markdown (a hint, a learned item) to sanitized HTML without a paragraph."""
    return nh3.clean(_markdown.renderInline(text), tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES)
