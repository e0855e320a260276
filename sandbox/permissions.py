"""Who may do what with a sandbox. Pure functions over rows, shared by views and consumers."""

from __future__ import annotations

import enum

from .models import Sandbox


class Access(enum.Enum):
    NONE = "none"
    READ_ONLY = "read-only"  # an instructor watching (classroom issue)
    FULL = "full"


def console_access(user, sandbox: Sandbox) -> Access:
    if not user.is_authenticated:
        return Access.NONE
    if sandbox.owner_id == user.pk:
        return Access.FULL
    return Access.NONE


def can_control(user, sandbox: Sandbox) -> bool:
    """Stop, reset, restart, run checks: the owner only."""
    return user.is_authenticated and sandbox.owner_id == user.pk
