from django.apps import AppConfig

from sandbox import lifecycle

from .catalogue import sandbox_limits_of


class LessonsConfig(AppConfig):
    name = "lessons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The sandbox layer lives by a lesson's own limits without importing lessons.
        lifecycle.register_lesson_limits(sandbox_limits_of)
