"""A Check on a step the learner has opened takes no database write transaction for its reads:
on SQLite every transaction begins IMMEDIATE, taking the write lock, and a class's Checks queued
for it behind everyone's writes before any of them ran."""

import pytest
from django.db import connections

from lessons.catalogue import get_lesson
from lessons.models import CheckAttempt
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db(transaction=True)

QUIZ_LESSON = "big-picture"


@pytest.fixture
def transactions_begun(monkeypatch):
    begun: list[str] = []
    wrapper = type(connections["default"])
    original = wrapper._start_transaction_under_autocommit

    def counting(self):
        begun.append(self.alias)
        return original(self)

    monkeypatch.setattr(wrapper, "_start_transaction_under_autocommit", counting)
    return begun


def test_a_check_on_an_opened_step_begins_no_write_transaction(owner, transactions_begun):
    step = get_lesson(QUIZ_LESSON).steps[0]
    client = signed_in_client(owner)
    assert client.get(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/").status_code == 200  # opened: its row is made
    transactions_begun.clear()
    html = client.post(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/check/", {}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-outcome="failed"' in html
    assert CheckAttempt.objects.filter(progress__user=owner).count() == 1
    assert transactions_begun == []
