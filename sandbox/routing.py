from django.urls import path, re_path

from .consumers import ConsoleConsumer

websocket_urlpatterns = [
    # Any id (the consumer closes with 4404 unless it is a uuid), and any other path under
    # ws/sandboxes/ reaches the consumer too: an unmatched websocket path makes the router raise,
    # which daphne answers with a 500 and a traceback in its log.
    path("ws/sandboxes/<str:sandbox_id>/console/", ConsoleConsumer.as_asgi()),
    re_path(r"^ws/sandboxes/", ConsoleConsumer.as_asgi()),
]
