from django.urls import re_path

from .consumers import DashboardConsumer

websocket_urlpatterns = [
    # At most 18 digits, as the pages' ``id`` converter: a longer id would overflow the database's
    # integer column (a 500 instead of a refusal).
    re_path(r"^ws/classrooms/(?P<classroom_id>[0-9]{1,18})/dashboard/$", DashboardConsumer.as_asgi()),
]
