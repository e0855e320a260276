from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classroom"

    def ready(self) -> None:
        # Progress rows are written by lessons/services.py; the dashboard hears about them through
        # post_save signals, so the lesson engine knows nothing about classrooms.
        from . import signals

        signals.connect()
