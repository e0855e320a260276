"""Engine failures, shared by every backend (the sandbox contract raises these)."""

from __future__ import annotations


class BackendError(Exception):
    """An engine failure with a message fit to show to a person (what is wrong, how to fix it)."""


class EngineUnavailable(BackendError):
    """The engine or cluster does not answer at all."""


class EngineTimeout(BackendError):
    """One engine call did not answer within its deadline. The engine itself may be fine (other
    calls answer): the object the call was about is stuck, not the engine down."""


class SandboxStuck(EngineTimeout):
    """Something of this sandbox would not go away within the deadlines; the rest was removed.
    The caller reports it (the learner reads the message) and a later reaper pass tries again."""
