"""`make run` end to end: embedded services, migrations, demo seed, web, worker and beat; Ctrl-C leaves nothing."""

import http.client
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from devservices.processes import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
OUTSIDE_SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def processes_with_marker(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def request(port: int, host: str, method: str, path: str, body: str = "", cookies: str = ""):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": host, "Cookie": cookies}
    if body:
        headers |= {"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://{host}/login/"}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read().decode()


@pytest.fixture
def stack_run_dir():
    run_dir = PROJECT_DIR / ".run" / f"stack-test-{uuid.uuid4().hex[:8]}"
    yield run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.with_suffix(".log").unlink(missing_ok=True)


def test_make_run_serves_the_seeded_demo_and_stops_cleanly(stack_run_dir):
    # given a machine with none of the outside services configured
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_SERVICES and not k.startswith(("STRIPE_", "TWILIO"))}
    env |= {"PORT": str(port), "REBILL_RUN_DIR": str(stack_run_dir)}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    output = stack_run_dir.with_suffix(".log")
    with open(output, "wb") as out:
        stack = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=PROJECT_DIR, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Rebill is running" not in output.read_text():
            assert stack.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        log = output.read_text()
        assert "PostgreSQL (embedded)" in log and "Redis (embedded)" in log

        # when a person signs in with a printed demo login
        login = re.search(rf"http://(\w+\.localhost:{port})/\s+(admin@\S+)\s+agency admin", log)
        assert login, log
        host, email = login.groups()
        # and the demo Twilio credentials one can type in are printed with them
        assert re.search(r"northwind\s+Account SID AC\w{32}\s+auth token \w{32}", log), log
        password = re.search(r"Demo logins \(password: (\S+)\):", log).group(1)
        page, html = request(port, host, "GET", "/login/")
        assert page.status == 200 and "Sign in" in html
        csrf_cookie = SimpleCookie(page.getheader("Set-Cookie"))["csrftoken"].value
        csrf_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = urlencode({"csrfmiddlewaretoken": csrf_field, "email": email, "password": password})
        signed_in, _ = request(port, host, "POST", "/login/", cookies=f"csrftoken={csrf_cookie}", body=form)
        assert signed_in.status == 302, _
        session = SimpleCookie(signed_in.getheader("Set-Cookie"))["sessionid"].value

        # then the agency's seeded clients are there
        listing, html = request(port, host, "GET", "/agency/subaccounts/", cookies=f"sessionid={session}")
        assert listing.status == 200 and "Sub-accounts" in html
        assert len(re.findall(r'href="/agency/subaccounts/\d+/"', html)) >= 2
        assert processes_with_marker(f"REBILL_RUN_DIR={stack_run_dir}")
    finally:
        # Ctrl-C, as a person would
        os.killpg(stack.pid, signal.SIGINT)
        try:
            stack.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            raise
    assert "Stopped." in output.read_text()
    time.sleep(0.5)
    assert processes_with_marker(f"REBILL_RUN_DIR={stack_run_dir}") == []
