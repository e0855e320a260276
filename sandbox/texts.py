"""Texts shown to people across a boundary: a stop reason saved in the database, a notice sent
over the channel layer, a websocket's close reason and errors. They are written (and saved, and
sent) in English, as gettext msgids, and translated where they are shown, in the reader's language:
a notice to a sandbox goes to every viewer of it (the learner, their instructor), each of whom may
read another language, and a saved reason is read long after it was written.

A text with values is sent as its English rendering (``render``). ``translate`` recognises it by
its msgid's pattern and renders the translation with the same values, so a saved reason needs no
new column and an old server's English message still reads. A text that matches no msgid (an
instructor's broadcast, an engine's own error) is shown as it is.

``viewer_language`` is the language a websocket's viewer reads: what LocaleMiddleware would choose
for their pages (the language cookie, then Accept-Language), from the handshake's headers.
"""

from __future__ import annotations

import functools
import re

from django.http import HttpRequest, parse_cookie
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_noop

from . import protocol

# Stop reasons (saved as Sandbox.failure_reason) and notices, in English; each a msgid.
STOPPED_BY_INSTRUCTOR = gettext_noop("Stopped by your instructor.")
CLASS_ENDED = gettext_noop("The class has ended.")
NOTICE_INSTRUCTOR_STOPPED = gettext_noop("Your instructor stopped this sandbox. Your progress is kept.")
NOTICE_INSTRUCTOR_RESETTING = gettext_noop("Your instructor is resetting this sandbox.")
NOTICE_CLASS_ENDED = gettext_noop("The class has ended: your sandbox is stopping. Your progress is kept.")
NOTICE_EXTENDED = gettext_noop("Your instructor gave the class %(minutes)d more minutes.")
NOTICE_TOOK_CONTROL = gettext_noop("Your instructor %(name)s has taken control of this terminal and may type in it.")
NOTICE_GAVE_BACK = gettext_noop("Your instructor %(name)s gave the terminal back to you.")
NOTICE_CONTROL_ENDED = gettext_noop("You no longer have control: watching read-only.")
ENGINE_RESTARTED = gettext_noop("The sandbox stopped because its engine restarted; start it again to carry on.")
CONTAINER_VANISHED = gettext_noop("The sandbox's container disappeared from the engine; start it again to carry on.")
STUCK_STARTING = gettext_noop("The sandbox did not finish starting (the server restarted during it); start it again.")
TIME_UP = gettext_noop("Time is up for this sandbox: it was stopped and its files removed. Your progress is kept.")
IDLE_STOPPED = gettext_noop("Stopped after %(minutes)d minutes without activity; your files are kept — start it again to carry on.")
WARN_EXPIRY = gettext_noop("Your sandbox's time runs out in about %(minutes)d min: it will stop.")
WARN_EXPIRY_EXTEND = gettext_noop("Your sandbox's time runs out in about %(minutes)d min: it will stop. Press Extend to keep it longer.")
WARN_IDLE = gettext_noop("No activity for a while: your sandbox stops in about %(minutes)d min unless you type something "
               "(your files are kept).")
# Errors and close reasons on the console's websocket.
TOO_MANY_CONSOLES = gettext_noop("Too many consoles open: close a tab and reload.")
TOO_MANY_MESSAGES = gettext_noop("Too many messages: slow down.")
FRAME_TOO_LARGE = gettext_noop("Input frames are limited to %(limit)d bytes.")
NO_LONGER_ALLOWED = gettext_noop("You no longer have access to this terminal.")
ENGINE_DOWN = gettext_noop("%(error)s Your sandbox comes back when the engine does; this page reconnects by itself.")
TOO_MANY_DASHBOARDS = gettext_noop("Too many dashboards open (at most %(limit)d): close another tab.")
DASHBOARD_ONLY_SENDS = gettext_noop("This websocket only sends.")

WITH_VALUES = (NOTICE_EXTENDED, NOTICE_TOOK_CONTROL, NOTICE_GAVE_BACK, IDLE_STOPPED, WARN_EXPIRY_EXTEND, WARN_EXPIRY,
               WARN_IDLE, FRAME_TOO_LARGE, TOO_MANY_DASHBOARDS, ENGINE_DOWN)
PLAIN = frozenset({STOPPED_BY_INSTRUCTOR, CLASS_ENDED, NOTICE_INSTRUCTOR_STOPPED, NOTICE_INSTRUCTOR_RESETTING,
                   NOTICE_CLASS_ENDED, NOTICE_CONTROL_ENDED, ENGINE_RESTARTED, CONTAINER_VANISHED, STUCK_STARTING,
                   TIME_UP, TOO_MANY_CONSOLES, TOO_MANY_MESSAGES, NO_LONGER_ALLOWED, DASHBOARD_ONLY_SENDS,
                   *(close.reason for close in protocol.CLOSE_CODES.values())})


def render(msgid: str, **values) -> str:
    """The English text of ``msgid`` with its values: what is saved or sent."""
    return msgid % values


@functools.cache
def _pattern(msgid: str) -> re.Pattern:
    parts = re.split(r"%\((\w+)\)([ds])", msgid)
    regex = ""
    for i, part in enumerate(parts):
        if i % 3 == 0:
            regex += re.escape(part)
        elif i % 3 == 1:
            regex += rf"(?P<{part}>\d+)" if parts[i + 1] == "d" else rf"(?P<{part}>.+?)"
    return re.compile(regex, re.S)


def translate(text: str) -> str:
    """``text`` in the active language when it is one of the texts above (with any values),
    else as it is."""
    if not text:
        return text
    if text in PLAIN:
        return gettext(text)
    for msgid in WITH_VALUES:
        match = _pattern(msgid).fullmatch(text)
        if match:
            values = {k: int(v) if v.isdigit() else v for k, v in match.groupdict().items()}
            # An %(error)s value may itself be one of these texts (or not): translated alike.
            values = {k: translate(v) if isinstance(v, str) else v for k, v in values.items()}
            return gettext(msgid) % values
    return text


def viewer_language(scope) -> str:
    """The language of the person on this websocket: the language cookie, then Accept-Language,
    then the site's default (Django's own choice for a page, from the same headers)."""
    request = HttpRequest()
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            request.COOKIES.update(parse_cookie(value.decode("latin-1")))
        elif name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)


def translate_for(language: str, text: str) -> str:
    with translation.override(language):
        return translate(text)
