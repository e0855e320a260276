"""Sign up, log in and continue as a guest, each with its abuse limit (``accounts.limits``).

Neither page tells whether a username exists: a failed log-in says the same for an unknown name
and a wrong password (Django's backend spends the same hashing time on both), a lockout is kept
per submitted name whether or not it exists, and a sign-up with a taken name answers exactly as
one that made an account (after the same hashing work).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from . import guests, limits

SIGNUP_DONE = gettext_noop("If that username was free, your account is ready: log in with it. If not, choose another name.")


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


class SignupForm(UserCreationForm):
    """Django's sign-up form (its password validators included) without the "already exists"
    error, which would list the site's usernames one guess at a time."""

    def clean_username(self):
        username = self.cleaned_data.get("username")
        if username and username.lower().startswith(guests.GUEST_PREFIX):
            raise ValidationError(_("Usernames starting with “%(prefix)s” are kept for guests.") % {"prefix": guests.GUEST_PREFIX})
        return username

    def validate_unique(self):
        pass  # the view decides, answering the same either way


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        verdict = limits.hit("signup", limits.client_address(request), settings.RATE_SIGNUPS_PER_ADDRESS)
        if verdict.limited:
            form.add_error(None, verdict.message(_("sign-ups from your address")))
            status = 429
        elif form.is_valid():
            username = form.cleaned_data["username"]
            User = get_user_model()
            if User.objects.filter(username__iexact=username).exists():
                make_password(form.cleaned_data["password1"])  # the same work as creating one
            else:
                form.save()
            messages.info(request, _(SIGNUP_DONE))
            # The name is carried to the log-in form, so only the password is typed again.
            query = urlencode({"next": _next_url(request), "username": username})
            return redirect(f"{reverse('login')}?{query}")
        else:
            status = 400
    return render(request, "registration/signup.html", {"form": form, "next": _next_url(request)}, status=status)


class LoginView(auth_views.LoginView):
    """Django's log-in with a cap per client address and a lockout per (username, address) that
    doubles with every further failure (``accounts.limits``)."""

    def post(self, request, *args, **kwargs):
        address = limits.client_address(request)
        username = request.POST.get("username", "")[:150]
        verdict = limits.hit("login", address, settings.RATE_LOGINS_PER_ADDRESS)
        if not verdict.limited:
            verdict = limits.login_locked(username, address)
        if verdict.limited:
            form = self.get_form_class()(request)  # unbound: the lock answers without trying the password
            context = self.get_context_data(form=form, throttled=verdict.message(_("failed log-ins")))
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(verdict.retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        limits.login_failed(self.request.POST.get("username", "")[:150], limits.client_address(self.request))
        return super().form_invalid(form)

    def form_valid(self, form):
        limits.login_succeeded(self.request.POST.get("username", "")[:150], limits.client_address(self.request))
        return super().form_valid(form)

    def get_initial(self):
        return {**super().get_initial(), "username": self.request.GET.get("username", "")[:150]}

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "guests_enabled": settings.GUESTS_ENABLED}


@require_POST
def guest(request: HttpRequest) -> HttpResponse:
    try:
        guests.create_guest(request)
    except guests.GuestRefused as exc:
        return render(request, "registration/guest_refused.html", {"reason": str(exc), "next": _next_url(request)},
                      status=429 if settings.GUESTS_ENABLED else 403)
    return redirect(_next_url(request))
