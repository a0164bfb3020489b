"""What real Stripe has and localstripe lacks, as patches plus one aiohttp middleware (dev/test only).

`install(app)` is called once by `devservices.localstripe_server` before the app starts. It adds:
idempotency keys, Connect-style separation by the `Stripe-Account` header (with `account` stamped on
webhook events), a record of /v1 requests, Customer Search, a few parameters localstripe rejects,
and a fake of Connect OAuth plus `GET /v1/accounts/{id}`. Control endpoints live under `/_rebill/`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import Event, List, PaymentIntent, PaymentMethod, SetupIntent, StripeObject, store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Json = dict[str, Any]

# The Stripe-Account the current request acts as; None is the platform.
_current_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("account", default=None)


@dataclass
class _StoredResponse:
    fingerprint: str
    status: int
    body: bytes
    content_type: str


@dataclass
class _State:
    owners: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (object, account)
    idempotency: dict[tuple[str | None, str], _StoredResponse] = field(default_factory=dict)
    in_flight: set[tuple[str | None, str]] = field(default_factory=set)
    requests: list[Json] = field(default_factory=list)
    accounts: dict[str, Json] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> account
    revoked: set[str] = field(default_factory=set)

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default_factory())  # type: ignore[misc]


state = _State()


def _random(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + "\n")


def _stripe_error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                  param: str | None = None) -> web.Response:
    error: Json = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return _json({"error": error}, status=status)


def _no_such(object_id: str, param: str, status: int) -> web.Response:
    kind = state.owners[object_id][0] if object_id in state.owners else "object"
    return _stripe_error(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


# --- patches of localstripe itself -------------------------------------------------------------

def _patch_resources() -> None:
    original_init = StripeObject.__init__

    def init(self: StripeObject, id: str | None = None) -> None:  # noqa: A002 - localstripe's name
        original_init(self, id)
        if not isinstance(self, List):
            state.owners[self.id] = (self.object, _current_account.get())

    StripeObject.__init__ = init  # type: ignore[method-assign]

    # Lists (every list endpoint, and nested ones such as customer.sources) only show objects of the
    # account the request acts as; paging is computed on the filtered list so has_more stays right.
    def page(self: List) -> tuple[list[Any], int]:
        account = _current_account.get()
        visible = [o for o in self._list if state.owners.get(getattr(o, "id", ""), ("", None))[1] == account]
        start = 0
        if self._starting_after is not None:
            for i, item in enumerate(visible):
                if getattr(item, "id", None) == self._starting_after:
                    start = i + 1
                    break
        return visible, start

    def data(self: List) -> list[Json]:
        visible, start = page(self)
        return [item._export() for item in visible[start:start + self._limit]]

    def has_more(self: List) -> bool:
        visible, start = page(self)
        return len(visible) > start + self._limit

    List.data = property(data)  # type: ignore[assignment,method-assign]
    List.has_more = property(has_more)  # type: ignore[assignment,method-assign]
    List.total_count = property(lambda self: len(page(self)[0]))  # type: ignore[assignment,method-assign]

    # Webhook delivery signs `event._export()`, so stamping the account here signs it too.
    original_event_export = Event._export

    def event_export(self: Event, expand: list[str] | None = None) -> Json:
        exported = original_event_export(self, expand)
        data_id = (self.data.get("object") or {}).get("id", "")
        _, account = state.owners.get(data_id) or state.owners.get(self.id, ("", None))
        if account is not None:
            exported["account"] = account
        return exported

    Event._export = event_export  # type: ignore[method-assign]

    # PaymentIntent parameters real Stripe accepts and localstripe rejects (or drops): take them off
    # before localstripe validates, then keep them on the object so responses and events echo them.
    original_pi_init = PaymentIntent.__init__

    def pi_init(self: PaymentIntent, *, description: str | None = None, setup_future_usage: str | None = None,
                statement_descriptor_suffix: str | None = None, payment_method_types: list[str] | None = None,
                allowed_payment_method_types: list[str] | None = None, **kwargs: Any) -> None:
        if setup_future_usage not in (None, "", "on_session", "off_session"):
            raise UserError(400, f"Invalid setup_future_usage: {setup_future_usage}",
                            {"param": "setup_future_usage"})
        payment_method_types = payment_method_types or allowed_payment_method_types
        original_pi_init(self, payment_method_types=payment_method_types, **kwargs)
        self.description = description
        self.setup_future_usage = setup_future_usage or None
        self.statement_descriptor_suffix = statement_descriptor_suffix
        self.payment_method_types = payment_method_types or ["card"]

    PaymentIntent.__init__ = pi_init  # type: ignore[method-assign]

    # As on Stripe, a successful payment with setup_future_usage saves the card on the customer.
    original_on_success = PaymentIntent._on_success

    def on_success(self: PaymentIntent) -> None:
        if self.setup_future_usage and self.customer and self.payment_method:
            payment_method = PaymentMethod._api_retrieve(self.payment_method)
            if isinstance(payment_method, PaymentMethod) and payment_method.customer is None:
                payment_method.customer = self.customer
        original_on_success(self)

    PaymentIntent._on_success = on_success  # type: ignore[method-assign]

    # API versions of stripe 16 call the create parameter `allowed_payment_method_types`.
    original_seti_init = SetupIntent.__init__

    def seti_init(self: SetupIntent, *, allowed_payment_method_types: list[str] | None = None,
                  **kwargs: Any) -> None:
        if allowed_payment_method_types is not None:
            kwargs.setdefault("payment_method_types", allowed_payment_method_types)
        original_seti_init(self, **kwargs)

    SetupIntent.__init__ = seti_init  # type: ignore[method-assign]

    # The launcher keeps everything in memory.
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]


# --- parsing ----------------------------------------------------------------------------------

async def _params(request: web.Request) -> Json:
    if request.method == "POST":
        data = await server.get_post_data(request, remove_auth=False)  # aiohttp caches the body
        return dict(data) if data else {}
    return dict(server.unflatten_data(request.query))


def _strings(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(param name in Stripe's bracket form, string) for every string nested in a parameter tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{prefix}[{key}]" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{prefix}[{i}]")
    elif isinstance(value, str):
        yield prefix, value


def _has_secret_key(request: web.Request) -> bool:
    return server.get_api_key(request) is not None


# --- the middleware ---------------------------------------------------------------------------

@web.middleware
async def rebill_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        return await _api_request(request, handler)
    control = _match(_CONTROL_ROUTES, request)
    if control is not None:
        return await control(request)
    response = await handler(request)
    if request.method == "DELETE" and request.path == "/_config/data" and response.status < 300:
        state.reset()
    return response


async def _api_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":  # CORS preflight from the Stripe.js mock
        return await handler(request)
    header_account = request.headers.get("Stripe-Account") or None
    idempotency_key = request.headers.get("Idempotency-Key") or None
    state.requests.append({"method": request.method, "path": request.path,
                           "stripe_account": header_account, "idempotency_key": idempotency_key})
    if header_account in state.revoked:
        return _stripe_error(403, f"The provided key does not have access to account '{header_account}' (or "
                                  "that account does not exist). Application access may have been revoked.",
                             code="account_invalid")
    params = await _params(request)
    account = header_account or _client_side_account(request, params)
    token = _current_account.set(account)
    try:
        if request.method != "POST" or idempotency_key is None:
            return await _forward(request, handler, params)
        return await _idempotent(request, handler, params, (account, idempotency_key))
    finally:
        _current_account.reset(token)


def _client_side_account(request: web.Request, params: Json) -> str | None:
    # localstripe's Stripe.js mock (confirmCardSetup, 3-D Secure) authenticates with the publishable
    # key and the intent's client_secret but cannot send `stripeAccount`; the client_secret is the
    # proof of access, so such requests act as the intent's account.
    secret = params.get("client_secret")
    if _has_secret_key(request) or not isinstance(secret, str):
        return None
    intent_id = secret.split("_secret_")[0]
    if intent_id in request.path.split("/"):
        return state.owners.get(intent_id, ("", None))[1]
    return None


async def _idempotent(request: web.Request, handler: Handler, params: Json,
                      scope: tuple[str | None, str]) -> web.StreamResponse:
    fingerprint = json.dumps([request.method, request.path, params], sort_keys=True, default=str)
    stored = state.idempotency.get(scope)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            return _stripe_error(
                400, "Keys for idempotent requests can only be used with the same parameters they were "
                     f"first used with. Try using a key other than '{scope[1]}' if you meant to execute a "
                     "different request.", type_="idempotency_error")
        return web.Response(status=stored.status, body=stored.body, content_type=stored.content_type,
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": scope[1]})
    if scope in state.in_flight:
        return _stripe_error(409, "There is currently another in-progress request using this idempotency key "
                                  f"('{scope[1]}'). Please try again later.", type_="idempotency_error")
    state.in_flight.add(scope)
    try:
        response = await _forward(request, handler, params)
    finally:
        state.in_flight.discard(scope)
    # Like Stripe, keep results of requests that ran (successes and card declines), not of requests
    # rejected up front by validation: those may be retried with the same key once fixed.
    if isinstance(response, web.Response) and (response.status < 400 or response.status == 402):
        assert isinstance(response.body, bytes)
        state.idempotency[scope] = _StoredResponse(fingerprint, response.status, response.body,
                                                   response.content_type)
    return response


async def _forward(request: web.Request, handler: Handler, params: Json) -> web.StreamResponse:
    account = _current_account.get()
    for segment in request.path.split("/")[2:]:
        if segment in state.owners and state.owners[segment][1] != account:
            return _no_such(segment, "id", 404)
    for name, value in _strings(params):
        if value in state.owners and state.owners[value][1] != account:
            # Real Stripe answers 400 for a parameter naming an object it cannot see.
            return _no_such(value, name, 400)

    own = _match(_API_ROUTES, request)
    try:
        if own is not None:
            if not _has_secret_key(request):
                return _stripe_error(401, "Invalid API Key provided.")
            response = await own(request)
        else:
            response = await handler(request)
    except UserError as e:
        return e.to_response()
    except web.HTTPException as e:
        return _stripe_error(e.status, f"Unrecognized request URL ({request.method}: {request.path}).")
    return _normalise_not_found(response)


def _normalise_not_found(response: web.StreamResponse) -> web.StreamResponse:
    # localstripe's 404s say only "Not Found"; the SDK and our code look at `code`.
    if response.status != 404 or not isinstance(response, web.Response):
        return response
    if not isinstance(response.body, bytes):
        return response
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" not in error:
        error["code"] = "resource_missing"
        return _json(body, status=404)
    return response


Route = tuple[str, re.Pattern[str], Handler]


def _match(routes: list[Route], request: web.Request) -> Handler | None:
    for method, pattern, route_handler in routes:
        found = pattern.fullmatch(request.path)
        if found and request.method == method:
            request["rebill.match"] = found.groupdict()
            return route_handler
    return None


# --- endpoints localstripe does not have -------------------------------------------------------

async def _customer_payment_methods(request: web.Request) -> web.Response:
    params = await _params(request)
    customer = request["rebill.match"]["customer"]
    expand = params.pop("expand", None)
    listing = PaymentMethod._api_list_all(request.path, customer=customer, type=params.pop("type", "card"),
                                          limit=params.pop("limit", None),
                                          starting_after=params.pop("starting_after", None))
    return _json(listing._export(expand=expand))


async def _customer_payment_method(request: web.Request) -> web.Response:
    match = request["rebill.match"]
    payment_method = PaymentMethod._api_retrieve(match["pm"])
    if payment_method.customer != match["customer"]:
        return _no_such(match["pm"], "payment_method", 404)
    return _json(payment_method._export())


_CLAUSE = re.compile(r'\s*(?:(?P<field>name|email)|metadata\["(?P<key>[^"]+)"\])\s*(?P<op>[:~])\s*'
                     r'"(?P<value>(?:[^"\\]|\\.)*)"')
_JOIN = re.compile(r"\s+(AND|OR)\s+")

Predicate = Callable[[Any], bool]


def _parse_search(query: str) -> tuple[list[Predicate], str]:
    """Stripe's search language, the subset we use: name/email with `:` (exact) or `~` (substring),
    metadata["k"]:"v", joined by all-AND or all-OR. Raises ValueError with Stripe-like messages."""
    predicates: list[Predicate] = []
    joins: set[str] = set()
    pos = 0
    while True:
        clause = _CLAUSE.match(query, pos)
        if clause is None:
            raise ValueError(f"Invalid search query at position {pos}: {query[pos:]!r}")
        predicates.append(_predicate(clause))
        pos = clause.end()
        if not query[pos:].strip():
            break
        join = _JOIN.match(query, pos)
        if join is None:
            raise ValueError(f"Invalid search query at position {pos}: {query[pos:]!r}")
        joins.add(join.group(1))
        pos = join.end()
    if len(joins) > 1:
        raise ValueError("A search query cannot mix AND and OR.")
    return predicates, joins.pop() if joins else "AND"


def _predicate(clause: re.Match[str]) -> Predicate:
    value = re.sub(r"\\(.)", r"\1", clause["value"])
    if clause["key"] is not None:
        key = clause["key"]
        if clause["op"] != ":":
            raise ValueError("metadata supports only the exact match operator ':'.")
        return lambda customer: (customer.metadata or {}).get(key) == value
    field_name = clause["field"]
    if clause["op"] == "~":
        if len(value) < 3:
            raise ValueError("The substring operator '~' needs at least 3 characters.")
        return lambda customer: value.lower() in (getattr(customer, field_name) or "").lower()
    return lambda customer: (getattr(customer, field_name) or "").lower() == value.lower()


async def _customer_search(request: web.Request) -> web.Response:
    params = await _params(request)
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        return _stripe_error(400, "Missing required param: query.", param="query")
    try:
        predicates, join = _parse_search(query)
    except ValueError as e:
        return _stripe_error(400, str(e), param="query")
    try:
        limit = int(params.get("limit") or 10)
    except ValueError:
        return _stripe_error(400, "Invalid integer: limit.", param="limit")
    combine = all if join == "AND" else any
    account = _current_account.get()
    found = [c for key, c in store.items()
             if key.startswith("customer:") and state.owners.get(c.id, ("", None))[1] == account
             and combine(p(c) for p in predicates)]
    found.sort(key=lambda c: c.created, reverse=True)
    return _json({"object": "search_result", "data": [c._export() for c in found[:limit]],
                  "has_more": len(found) > limit, "next_page": None, "url": "/v1/customers/search"})


def _account_object(account_id: str) -> Json:
    info = state.accounts[account_id]
    return {"id": account_id, "object": "account", "type": "standard", "email": info.get("email"),
            "business_profile": {"name": info.get("name")}, "charges_enabled": True,
            "payouts_enabled": True, "details_submitted": True, "country": "US", "default_currency": "usd",
            "livemode": False, "metadata": {}}


async def _retrieve_account(request: web.Request) -> web.Response:
    account_id = request["rebill.match"]["account"]
    if account_id not in state.accounts or account_id in state.revoked:
        return _stripe_error(404, f"No such account: '{account_id}'", code="resource_missing",
                             param="account")
    return _json(_account_object(account_id))


async def _register_account(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = _form_str(form, "id") or "acct_" + _random(16)
    state.accounts[account_id] = {"name": _form_str(form, "name") or None,
                                  "email": _form_str(form, "email") or None}
    state.revoked.discard(account_id)
    return _json(_account_object(account_id))


def _form_str(form: Any, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json({"error": error, "error_description": description}, status=status)


async def _oauth_token(request: web.Request) -> web.Response:
    form = await request.post()
    if not _has_secret_key(request) and not _form_str(form, "client_secret").startswith("sk_"):
        return _oauth_error(401, "invalid_client", "No authentication was provided. Send your secret API key "
                                                   "using the Authorization header, or as a client_secret "
                                                   "POST parameter.")
    grant_type = _form_str(form, "grant_type")
    if grant_type == "authorization_code":
        code = _form_str(form, "code")
        if not code.startswith("ac_") or code in state.used_codes:
            return _oauth_error(400, "invalid_grant", f"Authorization code does not exist: {code}")
        state.used_codes.add(code)
        # The same code always names the same account, so tests and the demo can predict it.
        account_id = "acct_" + hashlib.sha256(code.encode()).hexdigest()[:16]
        state.accounts.setdefault(account_id, {"name": None, "email": None})
    elif grant_type == "refresh_token":
        refresh = _form_str(form, "refresh_token")
        if refresh not in state.refresh_tokens:
            return _oauth_error(400, "invalid_grant", f"Invalid refresh token: {refresh}")
        account_id = state.refresh_tokens[refresh]
    else:
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    state.revoked.discard(account_id)
    refresh_token = "rt_" + _random(24)
    state.refresh_tokens[refresh_token] = account_id
    return _json({"access_token": "sk_test_" + _random(24), "livemode": False, "refresh_token": refresh_token,
                  "token_type": "bearer", "stripe_publishable_key": "pk_test_" + _random(24),
                  "stripe_user_id": account_id, "scope": "read_write"})


async def _oauth_deauthorize(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = _form_str(form, "stripe_user_id")
    if not _form_str(form, "client_id"):
        return _oauth_error(400, "invalid_request", "No client_id provided.")
    if account_id not in state.accounts or account_id in state.revoked:
        return _oauth_error(400, "invalid_client", f"This application is not connected to stripe account "
                                                   f"{account_id}, or that account does not exist.")
    state.revoked.add(account_id)
    return _json({"stripe_user_id": account_id})


async def _list_requests(request: web.Request) -> web.Response:
    return _json(state.requests)


async def _clear_requests(request: web.Request) -> web.Response:
    state.requests.clear()
    return web.Response()


async def _unregister_webhook(request: web.Request) -> web.Response:
    from localstripe import webhooks

    webhooks._webhooks.pop(request["rebill.match"]["id"], None)
    return web.Response()


_API_ROUTES: list[Route] = [
    ("GET", re.compile(r"/v1/customers/search"), _customer_search),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods"), _customer_payment_methods),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods/(?P<pm>\w+)"),
     _customer_payment_method),
    ("GET", re.compile(r"/v1/accounts/(?P<account>[\w-]+)"), _retrieve_account),
]

_CONTROL_ROUTES: list[Route] = [
    ("GET", re.compile(r"/_rebill/requests"), _list_requests),
    ("DELETE", re.compile(r"/_rebill/requests"), _clear_requests),
    ("POST", re.compile(r"/_rebill/accounts"), _register_account),
    ("DELETE", re.compile(r"/_config/webhooks/(?P<id>[^/]+)"), _unregister_webhook),
    ("POST", re.compile(r"/oauth/token"), _oauth_token),
    ("POST", re.compile(r"/oauth/deauthorize"), _oauth_deauthorize),
]

_installed = False


def install(app: web.Application) -> None:
    """Patch localstripe and put the middleware in front of its own (call before the app starts)."""
    global _installed
    if not _installed:
        _patch_resources()
        _installed = True
    if rebill_middleware not in app.middlewares:
        app.middlewares.insert(0, rebill_middleware)
