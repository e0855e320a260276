from django.urls import path

from . import views

app_name = "classroom"
urlpatterns = [
    path("", views.classroom_list, name="list"),
    path("join/", views.join_by_code, name="join-code"),
    path("join/<str:code>/", views.join, name="join"),
    path("<int:classroom_id>/", views.dashboard, name="dashboard"),
    path("<int:classroom_id>/mine/", views.learner_view, name="mine"),
    path("<int:classroom_id>/snapshot.json", views.snapshot_json, name="snapshot"),
    path("<int:classroom_id>/activity.json", views.activity_json, name="activity"),
    path("<int:classroom_id>/insights/", views.insights, name="insights"),
    path("<int:classroom_id>/export.csv", views.export, name="export"),
    path("<int:classroom_id>/settings/", views.update_classroom, name="update"),
    path("<int:classroom_id>/members/<int:membership_id>/remove/", views.remove_member, name="remove-member"),
    path("<int:classroom_id>/members/<int:membership_id>/rename/", views.rename_member, name="rename-member"),
    path("<int:classroom_id>/broadcast/", views.broadcast, name="broadcast"),
    path("<int:classroom_id>/extend/", views.extend, name="extend"),
    path("<int:classroom_id>/stop-all/", views.stop_all, name="stop-all"),
    path("<int:classroom_id>/sandboxes/<uuid:sandbox_id>/watch/", views.watch, name="watch"),
    path("<int:classroom_id>/sandboxes/<uuid:sandbox_id>/take-control/", views.take_control, name="take-control"),
    path("<int:classroom_id>/sandboxes/<uuid:sandbox_id>/release/", views.release_control, name="release"),
    path("<int:classroom_id>/sandboxes/<uuid:sandbox_id>/stop/", views.stop_sandbox, name="stop-sandbox"),
    path("<int:classroom_id>/sandboxes/<uuid:sandbox_id>/reset/", views.reset_sandbox, name="reset-sandbox"),
]
