"""The ``instructors`` group: its members create classrooms (``manage.py grant_instructor``)."""

from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="instructors")


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="instructors").delete()


class Migration(migrations.Migration):
    dependencies = [("classroom", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_group, remove_group)]
