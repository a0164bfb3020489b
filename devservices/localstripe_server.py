"""Run localstripe (a fake Stripe server, GPL, dev/test only) on 127.0.0.1, in memory, with our layer.

    python -m devservices.localstripe_server --port 8420

The layer (`devservices.localstripe_layer`) adds idempotency, `Stripe-Account` separation, Customer
Search, a Connect OAuth fake (with the authorize page `GET /oauth/authorize` that "Connect with Stripe"
opens: an Authorize button returns to the redirect_uri with a code), a card element in its Stripe.js that
takes cards as people type them, and a request record. Control endpoints besides localstripe's own
(`POST /_config/webhooks/<id>`, `DELETE /_config/data`):

    GET /_rebill/requests      every /v1 request: method, path, stripe_account, idempotency_key
    DELETE /_rebill/requests   clear that record
    POST /_rebill/accounts     pre-register a connected account (form: id?, name, email)
    DELETE /_config/webhooks/<id>

Tests and the dev stack use `start_localstripe()` and the small urllib helpers below.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devservices.processes import ServiceProcess, free_port, python_module

REPO_ROOT = Path(__file__).resolve().parent.parent


def serve(port: int, host: str = "127.0.0.1") -> None:
    import logging

    from aiohttp import web
    from localstripe import server

    from devservices import localstripe_layer

    # Access lines and localstripe's webhook delivery results go to the log file of the dev stack.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    localstripe_layer.install(server.app)
    web.run_app(server.app, host=host, port=port, print=None)


def start_localstripe(port: int | None = None, log_path: str | None = None, *,
                      timeout: float = 30.0) -> ServiceProcess:
    """Start the launcher in a child process and wait until it listens; `.url` is the base address."""
    port = port or free_port()
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    service = ServiceProcess(name="localstripe",
                             argv=python_module("devservices.localstripe_server", "--port", str(port)),
                             port=port, env={"PYTHONPATH": pythonpath}, log_path=log_path)
    return service.start(timeout=timeout)


def _call(method: str, url: str, form: list[tuple[str, str]] | None = None) -> bytes:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our own local server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return bytes(response.read())


def recorded_requests(base_url: str) -> list[dict[str, Any]]:
    """Every /v1 request since start or the last clear: method, path, stripe_account, idempotency_key."""
    result: list[dict[str, Any]] = json.loads(_call("GET", f"{base_url}/_rebill/requests"))
    return result


def clear_recorded_requests(base_url: str) -> None:
    _call("DELETE", f"{base_url}/_rebill/requests")


def register_webhook(base_url: str, *, url: str, secret: str, events: list[str] | None = None,
                     webhook_id: str | None = None) -> str:
    """Have localstripe POST events to `url`, signed with `secret`; returns the registration id."""
    webhook_id = webhook_id or "wh_" + secrets.token_hex(8)
    form = [("url", url), ("secret", secret)] + [("events[]", event) for event in events or []]
    _call("POST", f"{base_url}/_config/webhooks/{webhook_id}", form)
    return webhook_id


def unregister_webhook(base_url: str, webhook_id: str) -> None:
    _call("DELETE", f"{base_url}/_config/webhooks/{webhook_id}")


def register_account(base_url: str, *, account_id: str | None = None, name: str = "",
                     email: str = "") -> dict[str, Any]:
    """Make an account retrievable as if it had connected through OAuth (the demo's agencies)."""
    form = [("name", name), ("email", email)] + ([("id", account_id)] if account_id else [])
    result: dict[str, Any] = json.loads(_call("POST", f"{base_url}/_rebill/accounts", form))
    return result


def answer_slowly(base_url: str, *, method: str, path: str, seconds: float, count: int = 1) -> None:
    """Answer the next `count` requests `method` `path` (a prefix, e.g. "/v1/refunds") `seconds` late, with their
    idempotency key in flight meanwhile (a second request with that key gets Stripe's 409)."""
    _call("POST", f"{base_url}/_rebill/slow_answers",
          [("method", method), ("path", path), ("seconds", str(seconds)), ("count", str(count))])


def next_refund_answers(base_url: str, status: str) -> None:
    """Make the next refund with `status` ("pending", "failed", "canceled"; localstripe's own are "succeeded")."""
    _call("POST", f"{base_url}/_rebill/refund_outcomes", [("status", status)])


def reset(base_url: str) -> None:
    """Forget every object, connected account, idempotency key and recorded request (not webhooks)."""
    _call("DELETE", f"{base_url}/_config/data")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1", help="only a container's dev profile binds wider")
    args = parser.parse_args(argv)
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
