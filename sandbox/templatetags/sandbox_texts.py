"""``{{ sandbox.failure_reason|sandbox_text }}``: a stop reason saved in English, shown in the
reader's language (sandbox.texts)."""

from django import template

from sandbox import texts

register = template.Library()


@register.filter
def sandbox_text(text: str) -> str:
    return texts.translate(text or "")
