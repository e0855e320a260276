from django.urls import path

from .consumers import ConsoleConsumer

websocket_urlpatterns = [
    path("ws/sandboxes/<uuid:sandbox_id>/console/", ConsoleConsumer.as_asgi()),
]
