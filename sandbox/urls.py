from django.urls import path

from . import views

app_name = "sandbox"
urlpatterns = [
    path("start/<slug:slug>/", views.start, name="start"),
    path("lesson/<slug:slug>/pane/", views.lesson_pane, name="lesson_pane"),
    path("<uuid:sandbox_id>/pane/", views.pane, name="pane"),
    path("<uuid:sandbox_id>/stop/", views.stop, name="stop"),
    path("<uuid:sandbox_id>/reset/", views.reset, name="reset"),
    path("<uuid:sandbox_id>/restart/", views.restart, name="restart"),
    path("<uuid:sandbox_id>/extend/", views.extend, name="extend"),
]
