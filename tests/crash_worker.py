"""A real Celery worker (prefork, one child) on its own queue, for tests that kill it with SIGKILL at a crash point
(wallets.crashpoints) and prove the money path loses nothing and charges nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rebill.celery import app
from tests.billing.fixtures import CLIENT_ID, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from tests.conftest import test_database_url as database_url_for_children

CRASH_QUEUE = f"{app.conf.task_default_queue}-crash"


@contextmanager
def crash_worker_running(*, localstripe: str, log: Path, queue: str = CRASH_QUEUE) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": database_url_for_children(), "REBILL_ENV": "test", "CELERY_QUEUE": queue,
           "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY, "STRIPE_CLIENT_ID": CLIENT_ID,
           "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": localstripe,
           "STRIPE_CONNECT_BASE": localstripe, "STRIPE_JS_URL": ""}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "rebill", "worker", "--pool=prefork", "--concurrency=1",
             "--loglevel=INFO", "--queues", queue, "--hostname", f"crash-{queue}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not any(f"crash-{queue}" in name for reply in (app.control.ping(timeout=0.5) or [])
                      for name in reply):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("crash worker did not start:\n" + log.read_text())
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        print(log.read_text()[-3000:]) if os.environ.get("WALLET_CRASH_LOG") else None


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
