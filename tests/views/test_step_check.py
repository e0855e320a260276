"""Check (POST, htmx partial): quizzes graded on the server; task checks run in the requester's
OWN sandbox, every attempt recorded; a passing check opens Next."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient

from lessons.catalogue import get_lesson
from lessons.models import CheckAttempt, StepProgress
from sandbox import services as sandbox_services
from tests.factories import signed_in_client

QUIZ_LESSON = "big-picture"
TASK_LESSON = "what-is-a-container"


def _answers(step, *, right: bool) -> dict:
    answers = {}
    for number, question in enumerate(step.text.questions):
        if question.is_choice:
            answers[f"q{number}"] = question.answer_key if right else next(k for k in question.keys if k != question.answer_key)
        else:
            answers[f"q{number}"] = question.answer_text[0] if right else "no idea"
    return answers


@pytest.mark.django_db
def test_quiz_wrong_then_right_is_recorded_and_opens_next(owner, classmate):
    lesson = get_lesson(QUIZ_LESSON)
    step = lesson.steps[0]
    url = f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/check/"
    client = signed_in_client(owner)
    wrong = client.post(url, _answers(step, right=False), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-outcome="failed"' in wrong and "data-next" not in wrong
    right = client.post(url, _answers(step, right=True), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-outcome="passed"' in right
    assert f'href="/lessons/{QUIZ_LESSON}/steps/{lesson.steps[1].slug}/" data-next' in right
    assert 'hx-swap-oob="true"' in right  # Next is swapped in beside the result, no page reload
    progress = StepProgress.objects.get(user=owner, lesson=QUIZ_LESSON, step=step.slug)
    assert progress.passed
    assert list(progress.attempts.values_list("outcome", flat=True)) == ["failed", "passed"]
    # The classmate has passed nothing.
    assert not StepProgress.objects.filter(user=classmate, passed_at__isnull=False).exists()


@pytest.mark.django_db
def test_quiz_answers_by_choice_text_do_not_pass(owner):
    step = get_lesson(QUIZ_LESSON).steps[0]
    answers = {f"q{n}": (q.answer if q.is_choice else q.answer_text[0]) for n, q in enumerate(step.text.questions)}
    html = signed_in_client(owner).post(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/check/", answers).content.decode()
    assert 'data-outcome="failed"' in html


@pytest.mark.django_db
def test_anonymous_locked_and_get(outsider):
    lesson = get_lesson(QUIZ_LESSON)
    url = f"/lessons/{QUIZ_LESSON}/steps/{lesson.steps[0].slug}/check/"
    assert signed_in_client().post(url, {}).status_code == 302
    assert signed_in_client(outsider).get(url).status_code == 405
    assert signed_in_client(outsider).post(f"/lessons/{QUIZ_LESSON}/steps/{lesson.steps[3].slug}/check/", {}).status_code == 403
    assert not CheckAttempt.objects.exists()


@pytest.mark.django_db
def test_task_check_without_a_running_sandbox_says_so(outsider):
    step = get_lesson(TASK_LESSON).steps[0]
    html = signed_in_client(outsider).post(f"/lessons/{TASK_LESSON}/steps/{step.slug}/check/").content.decode()
    assert 'data-outcome="error"' in html and "not running" in html
    assert CheckAttempt.objects.get().outcome == "error"


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
async def test_task_check_runs_in_the_requesters_own_sandbox(owner, classmate, outsider, docker_client, base_image, labelled_leftovers):
    lesson = get_lesson(TASK_LESSON)
    step = lesson.steps[0]
    url = f"/lessons/{TASK_LESSON}/steps/{step.slug}/check/"
    client = AsyncClient()
    await client.aforce_login(owner)
    sandbox = await sandbox_services.start_sandbox(owner, lesson.slug, lesson.workspace, lesson.image)
    try:
        before = (await client.post(url, HTTP_HX_REQUEST="true")).content.decode()
        assert 'data-outcome="failed"' in before and "There is no /home/learner/pid1.txt yet" in before
        assert "data-next" not in before
        done = await sandbox_services.run_script(sandbox, step.solution, timeout=20)
        assert done.exit_code == 0, done
        after = (await client.post(url, HTTP_HX_REQUEST="true")).content.decode()
        assert 'data-outcome="passed"' in after and "Right: PID 1 here is" in after
        assert f"/lessons/{TASK_LESSON}/steps/{lesson.steps[1].slug}/" in after

        # Classmate and outsider: their check never touches the owner's (passing) sandbox.
        for other in (classmate, outsider):
            other_client = AsyncClient()
            await other_client.aforce_login(other)
            html = (await other_client.post(url)).content.decode()
            assert 'data-outcome="error"' in html and "not running" in html

        outcomes = await sync_to_async(list)(
            CheckAttempt.objects.filter(progress__user=owner).order_by("at", "id").values_list("outcome", "feedback")
        )
        assert [o for o, _f in outcomes] == ["failed", "passed"]
        assert "pid1.txt" in outcomes[0][1]
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
async def test_a_chinese_reader_gets_the_checks_messages_in_chinese(owner, docker_client, base_image, labelled_leftovers):
    lesson = get_lesson(TASK_LESSON)
    step = lesson.steps[0]
    url = f"/lessons/{TASK_LESSON}/steps/{step.slug}/check/"
    client = AsyncClient()
    await client.aforce_login(owner)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"  # what the language switch sets
    sandbox = await sandbox_services.start_sandbox(owner, lesson.slug, lesson.workspace, lesson.image)
    try:
        before = (await client.post(url, HTTP_HX_REQUEST="true")).content.decode()
        assert "还没有 /home/learner/pid1.txt（或者它是空的）。把作为 PID 1 运行的程序的名字写进去。" in before
        assert "There is no" not in before
        done = await sandbox_services.run_script(sandbox, step.solution, timeout=20)
        assert done.exit_code == 0, done
        after = (await client.post(url, HTTP_HX_REQUEST="true")).content.decode()
        assert 'data-outcome="passed"' in after and "对：这里的 PID 1 是" in after
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
