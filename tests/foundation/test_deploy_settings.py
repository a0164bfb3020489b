import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "REBILL_ENV": "production",
    "DJANGO_SECRET_KEY": "k" * 30 + "Production-Only-Secret-Key-1234567890-abcdefghij",
    "DJANGO_ALLOWED_HOSTS": "rebill.example.com,.rebill.example.com",
    "REBILL_BASE_DOMAIN": "rebill.example.com",
    "DATABASE_URL": "postgres://rebill@db.internal:5432/rebill",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def run_manage(*args, env):
    inherited = {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=base | env, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_production_values():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_has_no_secret_defaults():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
