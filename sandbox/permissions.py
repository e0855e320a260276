"""Who may do what with a sandbox, shared by views and consumers.

The owner's rule is pure. Rules that need the database and belong to a higher layer (an instructor
of the learner's classroom watches) are registered from that app's ``AppConfig.ready()`` with
:func:`register_console_rule`, so this module imports nothing above it.

Access is re-checked when it changes, not per keystroke: whoever changes what a rule reads
(control given back, learner removed, lesson unassigned, instructor revoked, class ended) sends an
``ACCESS_CHANGED`` event, after its transaction commits, to :func:`access_group` of each user whose
access may have changed. Every open console and dashboard of that user is in that group (across
processes, through the channel layer) and asks the rules again on the event.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

from .models import Sandbox


class Access(enum.Enum):
    NONE = "none"
    READ_ONLY = "read-only"  # an instructor watching
    FULL = "full"


# The channel-layer message type; a consumer handles it in ``access_changed(self, event)``.
ACCESS_CHANGED = "access.changed"


def access_group(user_id: int) -> str:
    """The channel-layer group of every open socket of one user, told when their access changes."""
    return f"access-{user_id}"


ConsoleRule = Callable[[object, Sandbox], Awaitable[Access]]
_console_rules: list[ConsoleRule] = []


def register_console_rule(rule: ConsoleRule) -> None:
    """Add a rule granting access to someone other than the owner (idempotent)."""
    if rule not in _console_rules:
        _console_rules.append(rule)


def console_access(user, sandbox: Sandbox) -> Access:
    if not user.is_authenticated:
        return Access.NONE
    if sandbox.owner_id == user.pk:
        return Access.FULL
    return Access.NONE


async def aconsole_access(user, sandbox: Sandbox) -> Access:
    """``console_access`` plus the registered rules, which need the database (so it is async).
    The first rule granting anything wins."""
    access = console_access(user, sandbox)
    if access is not Access.NONE or not user.is_authenticated:
        return access
    for rule in _console_rules:
        access = await rule(user, sandbox)
        if access is not Access.NONE:
            return access
    return Access.NONE


def can_control(user, sandbox: Sandbox) -> bool:
    """Stop, reset, restart, run checks: the owner only."""
    return user.is_authenticated and sandbox.owner_id == user.pk
