"""Log-in throttling with backoff, no username enumeration (log-in and sign-up), and Django's
password validators on sign-up."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts import limits
from accounts.views import SIGNUP_DONE
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db
User = get_user_model()
RIGHT = "correct horse battery"  # tests/conftest.make_user's password


def _login(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_five_failures_lock_the_name_even_against_the_right_password(owner):
    client = signed_in_client()
    assert [_login(client, "owner", "wrong").status_code for _ in range(5)] == [200] * 5
    locked = _login(client, "owner", RIGHT)
    assert locked.status_code == 429 and "Too many failed log-ins" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    # Another address (the learner at their own machine) is not locked out by the attacker.
    assert _login(signed_in_client(), "owner", RIGHT, REMOTE_ADDR="10.0.0.7").status_code == 302


def test_an_unknown_name_gets_exactly_what_a_known_one_gets(owner):
    client = signed_in_client()
    known = [_login(client, "owner", "wrong") for _ in range(6)]
    unknown = [_login(client, "nobody-here", "wrong") for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [200] * 5 + [429]
    assert _errors(known[0]) == _errors(unknown[0])
    assert _errors(known[-1]) == _errors(unknown[-1])


def _errors(response) -> list[str]:
    form = response.context.get("form") if response.context else None
    return [*(form.non_field_errors() if form else []), response.context.get("throttled", "")]


def test_log_in_attempts_per_address_are_capped_whatever_the_names(db, settings):
    settings.RATE_LOGINS_PER_ADDRESS = "4/m"
    client = signed_in_client()
    answers = [_login(client, f"name{n}", "x").status_code for n in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]


def test_the_lockout_doubles_with_each_further_failure(settings):
    settings.LOGIN_FAILURES_BEFORE_LOCKOUT = 3
    settings.LOGIN_LOCKOUT_SECONDS = 10
    waits = []
    for n in range(6):
        limits.login_failed("Someone", "10.0.0.1", now=1000.0)
        waits.append(limits.login_locked("someone", "10.0.0.1", now=1000.0).retry_after)
    assert waits == [0, 0, 11, 21, 41, 81]
    assert not limits.login_locked("someone", "10.0.0.1", now=1000.0 + 81).limited
    limits.login_succeeded("someone", "10.0.0.1")
    assert not limits.login_locked("someone", "10.0.0.1", now=1000.0).limited


def _signup(client, username, password="a long unusual passphrase 42", **extra):
    return client.post("/accounts/signup/", {"username": username, "password1": password, "password2": password}, **extra)


def test_sign_up_with_a_taken_name_answers_like_a_new_one(owner):
    taken = _signup(signed_in_client(), "Owner")
    new = _signup(signed_in_client(), "newcomer")
    # The same answer but for the name the visitor typed, carried to the log-in form.
    assert (taken.status_code, taken["Location"].replace("Owner", "NAME")) == \
        (new.status_code, new["Location"].replace("newcomer", "NAME"))
    assert User.objects.filter(username="newcomer").exists()
    assert User.objects.filter(username__iexact="owner").count() == 1
    # Both lead to the log-in page with the same words, and neither signs anyone in.
    client_a, client_b = signed_in_client(), signed_in_client()
    page_a = client_a.get(_signup(client_a, "owner")["Location"]).content.decode()
    page_b = client_b.get(_signup(client_b, "another-newcomer")["Location"]).content.decode()
    assert SIGNUP_DONE in page_a and SIGNUP_DONE in page_b
    assert "_auth_user_id" not in client_a.session and "_auth_user_id" not in client_b.session


def test_after_sign_up_the_log_in_form_has_the_name_filled_in(db):
    client = signed_in_client()
    page = client.get(_signup(client, "newcomer")["Location"]).content.decode()
    assert 'name="username" value="newcomer"' in page


@pytest.mark.parametrize("password", ["73918264", "password", "short1"])
def test_weak_passwords_are_refused_on_sign_up(db, password):
    response = _signup(signed_in_client(), "weakling", password)
    assert response.status_code == 400
    assert not User.objects.filter(username="weakling").exists()


def test_sign_ups_per_address_are_limited(db, settings):
    settings.RATE_SIGNUPS_PER_ADDRESS = "2/h"
    answers = [_signup(signed_in_client(), f"user{n}").status_code for n in range(4)]
    assert answers == [302, 302, 429, 429]
    assert User.objects.filter(username__startswith="user").count() == 2


def test_guest_names_cannot_be_taken_by_sign_up(db):
    assert _signup(signed_in_client(), "guest-abc").status_code == 400
