"""The warm pool's pace (sandbox.pool.refill_allowance): all it lacks when no class is at work;
behind a working class, one at a time, one every spacing at most."""

from __future__ import annotations

import pytest

from sandbox.pool import refill_allowance


def allowance(lacking=10, *, active=True, in_flight=0, since=None, spacing=5.0):
    return refill_allowance(lacking, class_active=active, in_flight=in_flight, since_last_seconds=since,
                            spacing_seconds=spacing)


def test_an_idle_install_refills_everything_it_lacks():
    assert allowance(active=False) == 10
    assert allowance(active=False, in_flight=3, since=0.1) == 10


def test_a_working_class_gets_one_at_a_time():
    assert allowance() == 1  # nothing pooled left, nothing being made
    assert allowance(since=5.0) == 1


@pytest.mark.parametrize("in_flight, since", [(1, None), (1, 60.0), (0, 0.0), (0, 4.9)])
def test_none_while_one_is_being_made_or_the_last_began_within_the_spacing(in_flight, since):
    assert allowance(in_flight=in_flight, since=since) == 0


def test_a_spacing_of_zero_turns_the_pacing_off():
    assert allowance(spacing=0, in_flight=2, since=0.0) == 10


def test_nothing_lacking_is_nothing_to_make():
    assert allowance(0, active=False) == 0
    assert allowance(0) == 0
