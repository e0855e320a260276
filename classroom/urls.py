from django.urls import path

from . import views

app_name = "classroom"
urlpatterns = [
    path("", views.classroom_list, name="list"),
    path("import/", views.import_scenario, name="import-scenario"),
    path("join/", views.join_by_code, name="join-code"),
    path("join/<str:code>/", views.join, name="join"),
    path("<id:classroom_id>/", views.dashboard, name="dashboard"),
    path("<id:classroom_id>/mine/", views.learner_view, name="mine"),
    path("<id:classroom_id>/projector/", views.projector, name="projector"),
    path("<id:classroom_id>/grid/", views.watch_grid, name="watch-grid"),
    path("<id:classroom_id>/snapshot.json", views.snapshot_json, name="snapshot"),
    path("<id:classroom_id>/activity.json", views.activity_json, name="activity"),
    path("<id:classroom_id>/insights/", views.insights, name="insights"),
    path("<id:classroom_id>/export.csv", views.export, name="export"),
    path("<id:classroom_id>/settings/", views.update_classroom, name="update"),
    path("<id:classroom_id>/members/remove/", views.remove_members, name="remove-members"),
    path("<id:classroom_id>/members/<id:membership_id>/remove/", views.remove_member, name="remove-member"),
    path("<id:classroom_id>/members/<id:membership_id>/rename/", views.rename_member, name="rename-member"),
    path("<id:classroom_id>/broadcast/", views.broadcast, name="broadcast"),
    path("<id:classroom_id>/extend/", views.extend, name="extend"),
    path("<id:classroom_id>/stop-all/", views.stop_all, name="stop-all"),
    path("<id:classroom_id>/sandboxes/<uuid:sandbox_id>/watch/", views.watch, name="watch"),
    path("<id:classroom_id>/sandboxes/<uuid:sandbox_id>/take-control/", views.take_control, name="take-control"),
    path("<id:classroom_id>/sandboxes/<uuid:sandbox_id>/release/", views.release_control, name="release"),
    path("<id:classroom_id>/sandboxes/<uuid:sandbox_id>/stop/", views.stop_sandbox, name="stop-sandbox"),
    path("<id:classroom_id>/sandboxes/<uuid:sandbox_id>/reset/", views.reset_sandbox, name="reset-sandbox"),
]
