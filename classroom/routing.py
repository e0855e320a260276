from django.urls import path

from .consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/classrooms/<int:classroom_id>/dashboard/", DashboardConsumer.as_asgi()),
]
