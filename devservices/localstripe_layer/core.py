"""State and helpers shared by the layer's modules."""

from __future__ import annotations

import contextvars
import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web
from localstripe import server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Json = dict[str, Any]

# The Stripe-Account the current request acts as; None is the platform.
current_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("account", default=None)


@dataclass
class StoredResponse:
    fingerprint: str
    status: int
    body: bytes
    content_type: str


@dataclass
class SlowAnswer:
    """The next `count` API requests `method` `path` (a prefix) are answered `seconds` late, while their idempotency
    key is in flight: how a test makes a second call with the same key meet Stripe's 409."""

    method: str
    path: str
    seconds: float
    count: int


@dataclass
class State:
    owners: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (object, account)
    idempotency: dict[tuple[str | None, str], StoredResponse] = field(default_factory=dict)
    in_flight: set[tuple[str | None, str]] = field(default_factory=set)
    requests: list[Json] = field(default_factory=list)
    accounts: dict[str, Json] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    code_accounts: dict[str, Json] = field(default_factory=dict)  # code issued by the authorize page -> account
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> account
    revoked: set[str] = field(default_factory=set)
    deleted_customers: set[str] = field(default_factory=set)
    slow_answers: list[SlowAnswer] = field(default_factory=list)
    refund_outcomes: list[str] = field(default_factory=list)  # the statuses the next refunds are made with

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default_factory())  # type: ignore[misc]


state = State()


def random_token(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + "\n")


def stripe_error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None) -> web.Response:
    error: Json = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return json_response({"error": error}, status=status)


def no_such(object_id: str, param: str, status: int) -> web.Response:
    kind = state.owners[object_id][0] if object_id in state.owners else "object"
    return stripe_error(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


async def request_params(request: web.Request) -> Json:
    if request.method == "POST":
        data = await server.get_post_data(request, remove_auth=False)  # aiohttp caches the body
        return dict(data) if data else {}
    return dict(server.unflatten_data(request.query))


def strings_in(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(param name in Stripe's bracket form, string) for every string nested in a parameter tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{prefix}[{key}]" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings_in(item, f"{prefix}[{i}]")
    elif isinstance(value, str):
        yield prefix, value


def has_secret_key(request: web.Request) -> bool:
    return server.get_api_key(request) is not None


Route = tuple[str, re.Pattern[str], Handler]


def match_route(routes: list[Route], request: web.Request) -> Handler | None:
    for method, pattern, route_handler in routes:
        found = pattern.fullmatch(request.path)
        if found and request.method == method:
            request["rebill.match"] = found.groupdict()
            return route_handler
    return None


def form_str(form: Any, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""

