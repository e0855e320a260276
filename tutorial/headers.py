"""Response headers every page gets: a Permissions-Policy, and ``Cache-Control: no-store`` on
learner data (JSON and CSV: the dashboard's snapshots, the progress export), so no browser cache
or shared proxy keeps a copy of a class's progress after the instructor logs out."""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin

LEARNER_DATA_TYPES = ("application/json", "text/csv")


class SecurityHeadersMiddleware(MiddlewareMixin):
    """MiddlewareMixin: sync and async alike, so async views keep running on the event loop."""

    def process_response(self, request, response):
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        if response.get("Content-Type", "").split(";")[0].strip() in LEARNER_DATA_TYPES:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
