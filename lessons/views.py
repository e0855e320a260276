from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from sandbox.models import Sandbox
from sandbox.views import pane_context

from .content_loader import all_lessons, get_lesson


def catalogue(request: HttpRequest) -> HttpResponse:
    return render(request, "lessons/catalogue.html", {"lessons": all_lessons()})


async def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    lesson = get_lesson(slug)
    if lesson is None:
        raise Http404("No such lesson")
    user = await request.auser()
    sandbox = None
    if user.is_authenticated:
        sandbox = await Sandbox.objects.filter(owner=user, lesson=slug).order_by("-created_at").afirst()
    context = {"lesson": lesson, **(await pane_context(lesson, sandbox, user))}
    return render(request, "lessons/lesson.html", context)
