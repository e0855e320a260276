from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog

from accounts import views as account_views
from ops import healthz
from sandbox.preview import preview_view
from tutorial.converters import DatabaseIdConverter

# Before the includes below: their patterns use <id:...> (tutorial/converters.py says why).
register_converter(DatabaseIdConverter, "id")

urlpatterns = [
    path("healthz", healthz.healthz, name="healthz"),  # container health checks (self-hosting)
    path("", include("lessons.urls")),
    path("sandboxes/", include("lessons.sandbox_pane_urls")),
    path("classrooms/", include("classroom.urls")),
    # A learner's published port, through the site (sandbox/preview.py: the token is the credential).
    path("preview/<str:token>/", preview_view, name="preview"),
    path("preview/<str:token>/<path:path>", preview_view, name="preview_path"),
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("accounts/guest/", account_views.guest, name="guest"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The pages' JavaScript words (djangojs catalogues) in the request's language, for gettext() in JS.
    # Pages name the language in the query, so a browser may keep each one for an hour and the next
    # page's scripts do not wait for it.
    path("jsi18n/", cache_control(max_age=3600)(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("admin/", admin.site.urls),
]
