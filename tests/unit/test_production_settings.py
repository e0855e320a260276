"""tutorial/settings.py read from the environment: production values, clear errors, and the
embedded defaults unchanged when nothing is set. Settings are module-level, so each case loads
them in a fresh interpreter with a clean environment."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DUMP = """
import json
from tutorial import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG, "SECRET_KEY": s.SECRET_KEY, "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS, "DATABASES": s.DATABASES,
    "CHANNEL_LAYERS": s.CHANNEL_LAYERS, "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_PROXY_SSL_HEADER": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT, "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "STORAGES": getattr(s, "STORAGES", None), "STATIC_ROOT": str(s.STATIC_ROOT),
    "LOGGING": s.LOGGING,
}, default=str))
"""


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "TUTORIAL_")) and k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update({"TUTORIAL_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys.executable, "-c", DUMP], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


def settings_with(tmp_path: Path, **env: str) -> dict:
    result = load_settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_defaults_need_no_variables(tmp_path):
    s = settings_with(tmp_path)
    assert s["DEBUG"] is True
    assert s["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert s["SESSION_COOKIE_SECURE"] is False and s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["STORAGES"] is None  # Django's default: files served from the source folders
    assert s["SECRET_KEY"] == (tmp_path / "data" / "secret_key").read_text().strip()  # generated, kept
    assert s["LOGGING"]["handlers"]["console"]["formatter"] == "plain"


def test_debug_off_without_a_secret_key_fails_with_a_clear_message(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in result.stderr
    assert not (tmp_path / "data" / "secret_key").exists()  # no silent per-process key


def test_secret_key_from_the_environment_or_a_file(tmp_path):
    assert settings_with(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 50)["SECRET_KEY"] == "k" * 50
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    assert settings_with(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY_FILE=str(key_file))["SECRET_KEY"] == "from-a-file"
    missing = load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY_FILE=str(tmp_path / "nope"))
    assert "DJANGO_SECRET_KEY_FILE=" in missing.stderr and "cannot be read" in missing.stderr


def test_production_mode_uses_hashed_compressed_static_files(tmp_path):
    s = settings_with(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k", TUTORIAL_STATIC_ROOT="/srv/static")
    assert s["STORAGES"]["staticfiles"]["BACKEND"] == "tutorial.static_storage.StaticFilesStorage"
    assert s["STATIC_ROOT"] == "/srv/static"
    # Empty means unset (a copied .env.example line), not "off" or the current folder.
    s = settings_with(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k", TUTORIAL_STATIC_MANIFEST="", TUTORIAL_STATIC_ROOT="")
    assert s["STORAGES"]["staticfiles"]["BACKEND"] == "tutorial.static_storage.StaticFilesStorage"
    assert s["STATIC_ROOT"] == str(tmp_path / "data" / "staticfiles")


def test_allowed_hosts_and_csrf_origins_from_the_environment(tmp_path):
    s = settings_with(tmp_path, DJANGO_ALLOWED_HOSTS="class.example.org, 127.0.0.1",
                      DJANGO_CSRF_TRUSTED_ORIGINS="https://class.example.org")
    assert s["ALLOWED_HOSTS"] == ["class.example.org", "127.0.0.1"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://class.example.org"]


def test_a_wildcard_allowed_host_is_refused(tmp_path):
    result = load_settings(tmp_path, DJANGO_ALLOWED_HOSTS="*")
    assert result.returncode != 0 and "'*' is not allowed" in result.stderr


def test_database_url_selects_postgresql(tmp_path):
    s = settings_with(tmp_path, DATABASE_URL="postgres://tutor:s3cret@db.internal:5433/classroom")
    db = s["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == ("db.internal", 5433, "classroom", "tutor", "s3cret")
    assert db["CONN_MAX_AGE"] == 0 and db["CONN_HEALTH_CHECKS"] is True


def test_a_malformed_database_url_is_a_clear_error(tmp_path):
    result = load_settings(tmp_path, DATABASE_URL="mongodb://nope")
    assert result.returncode != 0
    assert "DATABASE_URL is not a database URL" in result.stderr


def test_redis_url_selects_the_redis_channel_layer(tmp_path):
    s = settings_with(tmp_path, REDIS_URL="redis://127.0.0.1:6379/3")
    layer = s["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "tutorial.channel_layers.ResilientRedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://127.0.0.1:6379/3"
    # Longer than the layer's 5 s blocking read, or every idle console is closed every 5 s.
    assert host["socket_timeout"] > 5


def test_behind_a_tls_proxy_cookies_are_secure_and_the_proxy_header_is_trusted(tmp_path):
    s = settings_with(tmp_path, DJANGO_BEHIND_TLS_PROXY="1", DJANGO_HSTS_SECONDS="3600")
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_HSTS_SECONDS"] == 3600 and s["SECURE_SSL_REDIRECT"] is False
    # Without the opt-in the header is not trusted: a client could claim https itself.
    assert settings_with(tmp_path)["SECURE_PROXY_SSL_HEADER"] is None


def test_json_logs_are_opt_in_and_unknown_formats_refused(tmp_path):
    s = settings_with(tmp_path, TUTORIAL_LOG_FORMAT="json")
    assert s["LOGGING"]["handlers"]["console"]["formatter"] == "json"
    bad = load_settings(tmp_path, TUTORIAL_LOG_FORMAT="xml")
    assert "TUTORIAL_LOG_FORMAT must be 'plain' or 'json'" in bad.stderr


def test_json_formatter_writes_one_object_per_line_with_extras_and_traceback():
    from tutorial.jsonlog import JsonFormatter

    try:
        raise ValueError("bad input")
    except ValueError:
        record = logging.getLogger("sandbox").makeRecord(
            "sandbox", logging.WARNING, __file__, 1, "sandbox %s failed", ("abc",), sys.exc_info(),
            extra={"sandbox_id": "abc", "owner": object()})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "sandbox"
    assert entry["message"] == "sandbox abc failed" and entry["sandbox_id"] == "abc"
    assert "ValueError: bad input" in entry["exc_info"]
    assert entry["time"].endswith("+00:00")


def test_json_logs_from_a_real_process(tmp_path):
    code = "import django, logging; django.setup(); logging.getLogger('tutorial.test').info('hello %s', 'class')"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TUTORIAL_"))},
           "DJANGO_SETTINGS_MODULE": "tutorial.settings", "TUTORIAL_LOG_FORMAT": "json",
           "TUTORIAL_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"level": "INFO", "logger": "tutorial.test", "message": "hello class"}.items() <= lines[-1].items()


@pytest.mark.parametrize("debug", ["1", "0"])
def test_settings_load_with_every_value_of_env_example(tmp_path, debug):
    # .env.example copied as-is must give working settings (placeholders and commented lines).
    values = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    values.update(DJANGO_DEBUG=debug, TUTORIAL_DATA_DIR=str(tmp_path / "data"))
    s = settings_with(tmp_path, **values)
    assert s["ALLOWED_HOSTS"] == ["class.example.org"]
    assert s["SESSION_COOKIE_SECURE"] is True
