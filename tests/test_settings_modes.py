"""With no environment the product runs on embedded defaults; with DATABASE_URL and REDIS_URL
it uses PostgreSQL, Redis and real Celery workers. Each case loads the settings in a fresh
interpreter so the environment is exactly what a deployment would have."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json
from django.conf import settings
import django
django.setup()
from dynchat.celery import app
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "email": settings.EMAIL_BACKEND,
}))
"""


def load_settings(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    clean.update(DJANGO_SETTINGS_MODULE="dynchat.settings", DYNCHAT_VAR_DIR=str(tmp_path), **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    return result


def test_it_runs_on_embedded_defaults_without_any_environment(tmp_path):
    result = load_settings(tmp_path)

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["name"] == str(tmp_path / "dynchat.sqlite3")
    assert loaded["cache"].endswith("LocMemCache")
    assert loaded["eager"] is True
    assert loaded["email"].endswith("filebased.EmailBackend")


def test_it_uses_postgres_redis_and_real_workers_when_configured(tmp_path):
    result = load_settings(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/dynchat",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["cache"].endswith("RedisCache")
    assert loaded["eager"] is False
    assert loaded["broker"] == "redis://127.0.0.1:6379/3"


def test_it_refuses_to_start_on_a_malformed_setting(tmp_path):
    result = load_settings(tmp_path, DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_it_refuses_a_database_url_it_cannot_use(tmp_path):
    result = load_settings(tmp_path, DATABASE_URL="mysql://root@localhost/x")

    assert result.returncode != 0
    assert "DATABASE_URL must start with one of" in result.stderr
