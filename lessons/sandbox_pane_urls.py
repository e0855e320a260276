from django.urls import path

from . import editor, sandbox_pane

app_name = "sandbox"
urlpatterns = [
    path("start/<slug:slug>/", sandbox_pane.start, name="start"),
    path("lesson/<slug:slug>/pane/", sandbox_pane.lesson_pane, name="lesson_pane"),
    path("<uuid:sandbox_id>/pane/", sandbox_pane.pane, name="pane"),
    path("<uuid:sandbox_id>/stop/", sandbox_pane.stop, name="stop"),
    path("<uuid:sandbox_id>/reset/", sandbox_pane.reset, name="reset"),
    path("<uuid:sandbox_id>/restart/", sandbox_pane.restart, name="restart"),
    path("<uuid:sandbox_id>/extend/", sandbox_pane.extend, name="extend"),
    path("<uuid:sandbox_id>/ports/", sandbox_pane.ports, name="ports"),
    path("<uuid:sandbox_id>/files/", editor.file_list, name="files"),
    path("<uuid:sandbox_id>/files/open/", editor.file_detail, name="file"),
]
