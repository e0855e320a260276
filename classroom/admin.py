from django.contrib import admin

from .models import AssignedLesson, Classroom, Membership, TakeOver


class AssignedLessonInline(admin.TabularInline):
    model = AssignedLesson
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "instructor", "join_code", "open_for_joining", "created_at"]
    search_fields = ["name", "join_code", "instructor__username"]
    raw_id_fields = ["instructor"]
    inlines = [AssignedLessonInline, MembershipInline]


@admin.register(TakeOver)
class TakeOverAdmin(admin.ModelAdmin):
    list_display = ["sandbox", "instructor", "classroom", "started_at"]
