from django.urls import path

from . import views

app_name = "lessons"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="detail"),
    path("lessons/<slug:slug>/about/", views.lesson_overview, name="overview"),
    path("lessons/<slug:slug>/finish/", views.lesson_finish, name="finish"),
    path("lessons/<slug:slug>/steps/<slug:step_slug>/", views.step_detail, name="step"),
    path("lessons/<slug:slug>/steps/<slug:step_slug>/check/", views.step_check, name="check"),
    path("lessons/<slug:slug>/steps/<slug:step_slug>/hint/", views.step_hint, name="hint"),
    path("lessons/<slug:slug>/steps/<slug:step_slug>/solution/", views.step_solution, name="solution"),
    path("lessons/<slug:slug>/steps/<slug:step_slug>/setup/", views.step_setup, name="setup"),
]
