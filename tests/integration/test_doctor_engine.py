"""manage.py doctor against the real engine, Debian's PostgreSQL and Redis: the checks pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from ops import doctor

from .classroom_services import REPO, fresh_database, start_postgres_and_redis

pytestmark = pytest.mark.engine


def test_engine_check_reports_the_real_engine_version(docker_client):
    finding = doctor.check_engine()
    assert finding.ok, finding
    assert docker_client.version()["Version"] in finding.message


def test_cgroup_limits_are_enforceable_on_this_engine(docker_client):
    finding = doctor.check_cgroup_limits()
    assert finding.ok, finding


def test_images_check_finds_the_built_base_image(base_image):
    finding = doctor.check_images()
    # Other parts may register more images than the base; the base itself must not be missing.
    assert base_image not in finding.message or finding.ok, finding


def test_engine_checks_pass_through_the_command(docker_client, capsys):
    call_command("doctor", "--only", "engine", "cgroups", "disk")
    out = capsys.readouterr().out
    assert "ok   Docker engine: Docker" in out
    assert "FAIL" not in out


def test_doctor_passes_against_debian_postgresql_and_redis():
    services = start_postgres_and_redis()
    with fresh_database(services["DATABASE_URL"]) as database_url:
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": services["REDIS_URL"]}
        result = subprocess.run(
            [sys.executable, "manage.py", "doctor", "--only", "database", "channels"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   database: postgresql tutorial_test_" in result.stdout
    assert "ok   channel layer round trip: ResilientRedisChannelLayer round trip ok" in result.stdout
