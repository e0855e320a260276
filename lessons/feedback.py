"""A check's feedback in the learner's language.

A check is a shell script whose output is the feedback. Scripts come only from the original
step (a translation cannot change what is checked), so their messages are written once, in the
original language. A translation gives the messages it translates in its front matter::

    feedback:
      "There is no {file} yet.": "还没有 {file}。"
      "Right: PID 1 here is '{name}'.": "对：这里的 PID 1 是 '{name}'。"

Each output line that matches a key as a whole is replaced by its translation; ``{name}`` in a
key stands for any text, which the translation repeats by the same name. Lines that match no key
(command output, a message not translated yet) are shown as printed.

``check_messages`` reads the messages a check can print (the ``echo`` strings of its script, each
shell expansion as ``{}``), so ``check_lessons`` can list the ones a translation lacks.
"""

from __future__ import annotations

import functools
import re

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ECHO_RE = re.compile(r"(?:^|[\s;{(|&])echo\s+(?:-[ne]+\s+)?(?=[\"'])")
_VARIABLE_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9?#@*$!-])")


class FeedbackError(ValueError):
    """A translated message that cannot be used (its placeholders do not match)."""


def shape(message: str) -> str:
    """A message with every placeholder as ``{}``: how a key is compared with a check's echo."""
    return PLACEHOLDER_RE.sub("{}", message.strip())


# A translation's rules are compiled again at every load of its lesson; the same pairs each time.
@functools.lru_cache(maxsize=4096)
def compile_rule(key: str, translation: str) -> tuple[re.Pattern, str]:
    names = PLACEHOLDER_RE.findall(key)
    if len(set(names)) != len(names):
        raise FeedbackError(f"the message {key!r} uses a placeholder twice")
    unknown = set(PLACEHOLDER_RE.findall(translation)) - set(names)
    if unknown:
        raise FeedbackError(f"the translation of {key!r} uses {', '.join(sorted('{' + n + '}' for n in unknown))}, which the message does not have")
    pattern, position = "", 0
    for match in PLACEHOLDER_RE.finditer(key):
        pattern += re.escape(key[position : match.start()]) + f"(?P<{match.group(1)}>.*?)"
        position = match.end()
    pattern += re.escape(key[position:])
    return re.compile(pattern), translation


def translate(output: str, rules: tuple[tuple[re.Pattern, str], ...]) -> str:
    """The check's output with every line that matches a rule translated."""
    if not rules or not output:
        return output
    lines = []
    for line in output.split("\n"):
        stripped = line.rstrip()
        for pattern, translation in rules:
            match = pattern.fullmatch(stripped)
            if match:
                line = PLACEHOLDER_RE.sub(lambda m: match.group(m.group(1)), translation)
                break
        lines.append(line)
    return "\n".join(lines)


# --- Reading the messages of a check script ------------------------------------------------------


def _skip_command_substitution(script: str, i: int) -> int:
    """``i`` is just after ``$(``; returns the index after the matching ``)``."""
    depth = 1
    while i < len(script):
        c = script[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            end = script.find("'", i + 1)
            i = len(script) if end < 0 else end + 1
            continue
        if c == '"':
            _text, i = _double_quoted(script, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _double_quoted(script: str, i: int) -> tuple[str, int]:
    """``script[i]`` is ``"``: the string's text with expansions as ``{}``, and the index after it."""
    i += 1
    out: list[str] = []
    while i < len(script):
        c = script[i]
        if c == "\\" and i + 1 < len(script):
            out.append(script[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        elif script.startswith("$(", i):
            i = _skip_command_substitution(script, i + 2)
            out.append("{}")
        elif script.startswith("${", i):
            end = script.find("}", i)
            i = len(script) if end < 0 else end + 1
            out.append("{}")
        elif c == "`":
            end = script.find("`", i + 1)
            i = len(script) if end < 0 else end + 1
            out.append("{}")
        elif c == "$" and (variable := _VARIABLE_RE.match(script, i)):
            i = variable.end()
            out.append("{}")
        else:
            out.append(c)
            i += 1
    return "".join(out), i


def check_messages(script: str) -> list[str]:
    """The messages a check prints with ``echo "..."`` or ``echo '...'``, shell expansions as
    ``{}``; strings written to files or pipes, and strings of expansions only, are left out."""
    return list(_check_messages(script))


# Every translation of a step reads its check's messages again, at every load of the lesson.
@functools.lru_cache(maxsize=1024)
def _check_messages(script: str) -> tuple[str, ...]:
    messages: list[str] = []
    for match in _ECHO_RE.finditer(script):
        i = match.end()
        if script[i] == "'":
            end = script.find("'", i + 1)
            if end < 0:
                continue
            text, i = script[i + 1 : end], end + 1
        else:
            text, i = _double_quoted(script, i)
        rest = script[i : script.find("\n", i) if "\n" in script[i:] else len(script)].lstrip()
        if rest.startswith("|") or (rest.startswith(">") and not rest.startswith(">&2")):
            continue
        if re.search(r"[^\W\d_]", text.replace("{}", "")) and text.strip() not in messages:
            messages.append(text.strip())
    return tuple(messages)
