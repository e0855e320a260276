import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")

from tutorial.request_threads import get_asgi_application  # noqa: E402

# Django must be set up before consumers (and their models) are imported. Requests' sync work
# runs on kept threads instead of a new one per request (tutorial/request_threads.py).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from classroom.routing import websocket_urlpatterns as classroom_websockets  # noqa: E402
from lessons.catalogue import all_lessons  # noqa: E402
from sandbox.preview_socket import PreviewSocket  # noqa: E402
from sandbox.routing import websocket_urlpatterns  # noqa: E402
from tutorial.body_limit import RequestBodyLimit, guard_daphne  # noqa: E402
from tutorial.origins import OriginValidator  # noqa: E402
from tutorial.static_files import StaticFiles  # noqa: E402

guard_daphne()  # inside daphne: refuse big bodies and slow requests before they are buffered
# Parsed now, at start-up, rather than inside the first learner's request (a few hundred ms).
all_lessons()

application = ProtocolTypeRouter(
    {
        # Bodies past REQUEST_BODY_MAX_BYTES are refused before they are read (tutorial/body_limit.py).
        # Files under STATIC_URL are answered before Django (tutorial/static_files.py), so no other
        # request passes through a sync-only static middleware.
        "http": RequestBodyLimit(StaticFiles(django_asgi_app)),
        # Scheme, host and port of the Origin, not the host alone (see tutorial/origins.py).
        # Any other websocket path is refused at the handshake: left unmatched, the router raises
        # and daphne logs a traceback for every such request.
        # A web preview's own sockets come from its opaque-origin page (Origin: null) and carry
        # their credential in the path (sandbox/preview_socket.py): outside the Origin check.
        "websocket": URLRouter([
            path("preview/<str:token>/", PreviewSocket.as_asgi()),
            path("preview/<str:token>/<path:path>", PreviewSocket.as_asgi()),
            re_path(r"", OriginValidator(AuthMiddlewareStack(URLRouter(
                websocket_urlpatterns + classroom_websockets + [re_path(r"", WebsocketDenier.as_asgi())])))),
        ]),
    }
)
