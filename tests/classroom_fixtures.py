"""Fixtures for the classroom tests: two instructors, a classroom with the owner and classmate in
it, and a running sandbox of the owner's for the console tests.

A pytest plugin (``pytest_plugins`` in tests/conftest.py): the classroom tests live in several
folders.
"""

from __future__ import annotations

import pytest

from tests.factories import LESSON, make_instructor


@pytest.fixture
def instructor(db):
    return make_instructor("instructor")


@pytest.fixture
def other_instructor(db):
    return make_instructor("other-instructor")


@pytest.fixture
def classroom(instructor, owner, classmate):
    """The instructor's classroom for LESSON, with owner and classmate joined."""
    from classroom import roster

    room = roster.create_classroom(instructor, "Monday class", [LESSON])
    roster.join(room, owner, "Olive Owner")
    roster.join(room, classmate, "Cleo Classmate")
    return room


@pytest.fixture
def other_classroom(other_instructor, outsider):
    """Another instructor's classroom (same lesson), with the outsider in it."""
    from classroom import roster

    room = roster.create_classroom(other_instructor, "Other class", [LESSON])
    roster.join(room, outsider, "Otto Outsider")
    return room


@pytest.fixture
async def learners_sandbox(owner, base_image, labelled_leftovers):
    """The owner's running sandbox for LESSON, on the real engine; nothing of it is left after."""
    from sandbox import services
    from sandbox.models import Sandbox

    sandbox = await services.start_sandbox(owner, LESSON, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    yield sandbox
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []
