"""The quiz as each learner sees it: the choices in an order of their own (stable on reload,
different between learners), sent back by a key that does not give away which one is right, and
after a wrong answer the feedback written for that answer."""

import re

import pytest
from django.utils import translation

from lessons.catalogue import all_lessons, get_lesson
from tests.factories import make_user
from tests.factories import signed_in_client

QUIZ_LESSON = "big-picture"


def _radios(html: str, question: int) -> list[str]:
    return re.findall(rf'<input type="radio" name="q{question}" value="([0-9a-f]+)">', html)


def _page(client, step) -> str:
    return client.get(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/").content.decode()


@pytest.mark.django_db
def test_learners_see_their_own_stable_order_and_the_answer_is_not_always_first(owner):
    step = get_lesson(QUIZ_LESSON).steps[0]
    question = step.text.questions[0]
    first = _radios(_page(signed_in_client(owner), step), 0)
    assert sorted(first) == sorted(question.keys)
    assert _radios(_page(signed_in_client(owner), step), 0) == first  # a reload keeps the order
    orders = {tuple(_radios(_page(signed_in_client(make_user(f"learner{n}")), step), 0)) for n in range(12)}
    assert len(orders) > 1
    assert {order[0] for order in orders} != {question.answer_key}


@pytest.mark.django_db
def test_the_page_sends_keys_not_positions(owner):
    step = get_lesson(QUIZ_LESSON).steps[0]
    html = _page(signed_in_client(owner), step)
    assert 'value="0"' not in html and 'value="1"' not in html


@pytest.mark.django_db
def test_a_wrong_choice_shows_its_why_and_not_the_right_answer(owner):
    step = get_lesson(QUIZ_LESSON).steps[0]
    question = step.text.questions[0]
    wrong = next(k for k in question.keys if k != question.answer_key)
    answers = {"q0": wrong, "q1": step.text.questions[1].answer_key, "q2": "tag"}
    html = signed_in_client(owner).post(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/check/", answers, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-outcome="failed"' in html
    assert question.why_html(wrong) and question.why_html(wrong) in html
    assert question.answer not in html
    assert question.answer_key not in html


@pytest.mark.django_db
def test_every_wrong_choice_of_the_lessons_has_feedback_in_every_language():
    for lesson in all_lessons():
        for step in lesson.steps:
            for language in [None, *step.translations]:
                with translation.override(language or "en"):
                    for question in step.questions:
                        for key in question.keys:
                            if key != question.answer_key:
                                assert question.why_html(key), f"{step.path} ({language or 'en'}): {question.prompt} has a wrong choice without 'why'"
