"""Starting the fake in a child process, and calling its control API."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from devservices.processes import ServiceProcess, free_port, python_module

# --- Process + control helpers -------------------------------------------------------------------

def start_fake_twilio(
    port: int | None = None, *, demo: bool = False, log_path: str | None = None
) -> ServiceProcess:
    """Start the fake in a child process and wait until it listens; ``.url`` is its base URL."""
    port = port or free_port()
    args = ["--port", str(port)] + (["--demo"] if demo else [])
    return ServiceProcess("fake_twilio", python_module("devservices.fake_twilio", *args), port,
                          log_path=log_path).start()


def _call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method,  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")


def create_account(base_url: str, sid: str, auth_token: str, *, parent_sid: str | None = None,
                   friendly_name: str | None = None, status: str = "active",
                   demo: bool = False, currency: str = "usd") -> dict[str, Any]:
    body: dict[str, Any] = {"sid": sid, "auth_token": auth_token, "parent_sid": parent_sid,
                            "status": status, "demo": demo, "currency": currency}
    if friendly_name is not None:
        body["friendly_name"] = friendly_name
    return _call(base_url, "POST", "/_fake/accounts", body)


def set_usage(base_url: str, sid: str, records: Iterable[dict[str, Any]], *,
              replace_all: bool = False) -> None:
    """Set leaf records ``{category, date, count, usage, price}``; each replaces its (category, date).

    A record with ``"unlisted": True`` counts in its parents and ``totalprice`` but is never served itself
    (usage Twilio bills without listing it: the day's leaves then fall short of ``totalprice``)."""
    recs = [{**r, "date": str(r["date"])} for r in records]  # str(date) is ISO
    _call(base_url, "POST", f"/_fake/accounts/{sid}/usage", {"records": recs, "replace_all": replace_all})


def inject_fault(base_url: str, sid: str, kind: str, *, count: int = 1, status: int = 500,
                 retry_after: float | str | None = None, seconds: float = 0.0, field: str = "price") -> None:
    """kind: ``status`` (next ``count`` requests answer ``status``), ``sleep`` (next requests wait
    ``seconds`` first), ``malformed`` (next ``count`` usage pages carry one extra broken record,
    broken in ``field``: price, usage, count, category or date) or ``overlap`` (next ``count`` usage
    pages after the first start with the previous page's last record again)."""
    _call(base_url, "POST", f"/_fake/accounts/{sid}/faults",
          {"kind": kind, "count": count, "status": status, "retry_after": retry_after,
           "seconds": seconds, "field": field})


def clear_faults(base_url: str, sid: str) -> None:
    _call(base_url, "DELETE", f"/_fake/accounts/{sid}/faults")


def bulk_generate(base_url: str, *, accounts: int, start_date: date, days: int, seed: int = 0,
                  auth_token: str = "bulk-token",  # noqa: S107
                  parent_sid: str | None = None) -> dict[str, Any]:
    return _call(base_url, "POST", "/_fake/bulk",
                 {"accounts": accounts, "start_date": start_date.isoformat(), "days": days, "seed": seed,
                  "auth_token": auth_token, "parent_sid": parent_sid})


def request_log(base_url: str, account: str | None = None) -> list[dict[str, Any]]:
    path = "/_fake/requests" + (f"?{urlencode({'account': account})}" if account else "")
    return _call(base_url, "GET", path)["requests"]


def clear_request_log(base_url: str) -> None:
    _call(base_url, "DELETE", "/_fake/requests")


def account_status(base_url: str, sid: str) -> str:
    return _call(base_url, "GET", f"/_fake/accounts/{sid}")["status"]


def reset(base_url: str) -> None:
    _call(base_url, "POST", "/_fake/reset")

