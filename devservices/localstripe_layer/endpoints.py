"""Endpoints localstripe does not have: Customer and PaymentIntent Search, customer payment methods, accounts, the
Connect OAuth fake, and the `/_rebill/` control endpoints."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from localstripe import webhooks
from localstripe.resources import PaymentMethod, store

from devservices.localstripe_layer.core import (
    Json,
    Route,
    SlowAnswer,
    current_account,
    form_str,
    has_secret_key,
    json_response,
    no_such,
    random_token,
    request_params,
    state,
    stripe_error,
)


async def _customer_payment_methods(request: web.Request) -> web.Response:
    params = await request_params(request)
    customer = request["rebill.match"]["customer"]
    expand = params.pop("expand", None)
    listing = PaymentMethod._api_list_all(request.path, customer=customer, type=params.pop("type", "card"),
                                          limit=params.pop("limit", None),
                                          starting_after=params.pop("starting_after", None))
    return json_response(listing._export(expand=expand))


async def _customer_payment_method(request: web.Request) -> web.Response:
    match = request["rebill.match"]
    payment_method = PaymentMethod._api_retrieve(match["pm"])
    if payment_method.customer != match["customer"]:
        return no_such(match["pm"], "payment_method", 404)
    return json_response(payment_method._export())


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
    return await _search(request, "customer")


async def _payment_intent_search(request: web.Request) -> web.Response:
    return await _search(request, "payment_intent")


async def _search(request: web.Request, kind: str) -> web.Response:
    params = await request_params(request)
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        return stripe_error(400, "Missing required param: query.", param="query")
    try:
        predicates, join = _parse_search(query)
    except ValueError as e:
        return stripe_error(400, str(e), param="query")
    try:
        limit = int(params.get("limit") or 10)
    except ValueError:
        return stripe_error(400, "Invalid integer: limit.", param="limit")
    combine = all if join == "AND" else any
    account = current_account.get()
    found = [c for key, c in store.items()
             if key.startswith(f"{kind}:") and state.owners.get(c.id, ("", None))[1] == account
             and combine(p(c) for p in predicates)]
    found.sort(key=lambda c: c.created, reverse=True)
    return json_response({"object": "search_result", "data": [c._export() for c in found[:limit]],
                          "has_more": len(found) > limit, "next_page": None, "url": f"/v1/{kind}s/search"})


def _account_object(account_id: str) -> Json:
    info = state.accounts[account_id]
    return {"id": account_id, "object": "account", "type": "standard", "email": info.get("email"),
            "business_profile": {"name": info.get("name")}, "charges_enabled": True,
            "payouts_enabled": True, "details_submitted": True, "country": "US", "default_currency": "usd",
            "livemode": False, "metadata": {}}


async def _retrieve_account(request: web.Request) -> web.Response:
    account_id = request["rebill.match"]["account"]
    if account_id not in state.accounts or account_id in state.revoked:
        return stripe_error(404, f"No such account: '{account_id}'", code="resource_missing", param="account")
    return json_response(_account_object(account_id))


async def _register_account(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = form_str(form, "id") or "acct_" + random_token(16)
    state.accounts[account_id] = {"name": form_str(form, "name") or None,
                                  "email": form_str(form, "email") or None}
    state.revoked.discard(account_id)
    return json_response(_account_object(account_id))


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)


def _authorize_page(*, status: int = 200, body: str) -> web.Response:
    page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connect with Stripe (local)</title>"
            "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;"
            "color:#1d2433}button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #635bff;"
            "background:#635bff;color:#fff;cursor:pointer}button.secondary{background:#fff;color:#635bff}"
            "label{display:block;margin:1rem 0}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}"
            "small{color:#5d6b82}</style></head><body>" + body + "</body></html>")
    return web.Response(status=status, text=page, content_type="text/html")


def _authorize_refused(refusal: str) -> web.Response:
    return _authorize_page(status=400, body=f'<h1>Connect with Stripe</h1><p role="alert">{html.escape(refusal)}</p>')


def _authorize_refusal(query: Any) -> str | None:
    """What real Stripe's authorize page would refuse (it shows an error instead of redirecting)."""
    if not str(query.get("client_id", "")).startswith("ca_"):
        return "No such application: the client_id is missing or invalid."
    if query.get("response_type", "code") != "code":
        return "Invalid response_type: only 'code' is supported."
    redirect_uri = urlsplit(str(query.get("redirect_uri", "")))
    if redirect_uri.scheme not in ("http", "https") or not redirect_uri.netloc:
        return "Invalid redirect_uri: it must be an absolute http(s) URL."
    return None


async def _oauth_authorize_page(request: web.Request) -> web.Response:
    """Stands in for connect.stripe.com's consent page: one Authorize button that returns with a code."""
    query = request.query
    refusal = _authorize_refusal(query)
    if refusal:
        return _authorize_refused(refusal)
    hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(str(query.get(name, "")))}">'
                     for name in ("client_id", "redirect_uri", "state", "scope"))
    return _authorize_page(body=(
        "<h1>Connect with Stripe</h1>"
        "<p>This is the local Stripe used in development: no real Stripe account is involved. "
        "Authorizing creates a test-mode account and connects it.</p>"
        '<form method="post" action="/oauth/authorize">' + hidden +
        '<label>Business name <small>(shown as the account\'s name)</small>'
        '<input name="business_name" value="" autocomplete="organization"></label>'
        '<button type="submit" name="decision" value="authorize">Authorize</button> '
        '<button type="submit" name="decision" value="deny" class="secondary">Cancel</button>'
        "</form>"))


async def _oauth_authorize_decide(request: web.Request) -> web.Response:
    form = await request.post()
    refusal = _authorize_refusal(form)
    if refusal:
        return _authorize_refused(refusal)
    answer: dict[str, str]
    if form_str(form, "decision") == "authorize":
        code = "ac_" + random_token(24)
        state.code_accounts[code] = {"name": form_str(form, "business_name").strip() or None, "email": None}
        answer = {"code": code, "scope": form_str(form, "scope") or "read_write"}
    else:
        answer = {"error": "access_denied", "error_description": "The user denied your request"}
    if form_str(form, "state"):
        answer["state"] = form_str(form, "state")
    redirect_uri = form_str(form, "redirect_uri")
    separator = "&" if urlsplit(redirect_uri).query else "?"
    raise web.HTTPFound(redirect_uri + separator + urlencode(answer))


async def _oauth_token(request: web.Request) -> web.Response:
    form = await request.post()
    if not has_secret_key(request) and not form_str(form, "client_secret").startswith("sk_"):
        return _oauth_error(401, "invalid_client", "No authentication was provided. Send your secret API key "
                                                   "using the Authorization header, or as a client_secret "
                                                   "POST parameter.")
    grant_type = form_str(form, "grant_type")
    if grant_type == "authorization_code":
        code = form_str(form, "code")
        if not code.startswith("ac_") or code in state.used_codes:
            return _oauth_error(400, "invalid_grant", f"Authorization code does not exist: {code}")
        state.used_codes.add(code)
        # The same code always names the same account, so tests and the demo can predict it.
        account_id = "acct_" + hashlib.sha256(code.encode()).hexdigest()[:16]
        state.accounts.setdefault(account_id, state.code_accounts.pop(code, {"name": None, "email": None}))
    elif grant_type == "refresh_token":
        refresh = form_str(form, "refresh_token")
        if refresh not in state.refresh_tokens:
            return _oauth_error(400, "invalid_grant", f"Invalid refresh token: {refresh}")
        account_id = state.refresh_tokens[refresh]
    else:
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    state.revoked.discard(account_id)
    refresh_token = "rt_" + random_token(24)
    state.refresh_tokens[refresh_token] = account_id
    return json_response({"access_token": "sk_test_" + random_token(24), "livemode": False,
                          "refresh_token": refresh_token, "token_type": "bearer",
                          "stripe_publishable_key": "pk_test_" + random_token(24),
                          "stripe_user_id": account_id, "scope": "read_write"})


async def _oauth_deauthorize(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = form_str(form, "stripe_user_id")
    if not form_str(form, "client_id"):
        return _oauth_error(400, "invalid_request", "No client_id provided.")
    if account_id not in state.accounts or account_id in state.revoked:
        return _oauth_error(400, "invalid_client", f"This application is not connected to stripe account "
                                                   f"{account_id}, or that account does not exist.")
    state.revoked.add(account_id)
    return json_response({"stripe_user_id": account_id})


async def _list_requests(request: web.Request) -> web.Response:
    return json_response(state.requests)


async def _clear_requests(request: web.Request) -> web.Response:
    state.requests.clear()
    return web.Response()


async def _add_slow_answer(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        slow = SlowAnswer(method=form_str(form, "method").upper(), path=form_str(form, "path"),
                          seconds=float(form_str(form, "seconds")), count=int(form_str(form, "count") or "1"))
    except ValueError:
        return stripe_error(400, "seconds must be a number and count a whole number")
    if not slow.path.startswith("/v1/") or not 0 < slow.seconds <= 30 or slow.count < 1:
        return stripe_error(400, "path must start with /v1/, seconds be in (0, 30] and count at least 1")
    state.slow_answers.append(slow)
    return web.Response()


REFUND_STATUSES = ("succeeded", "pending", "failed", "canceled")


async def _add_refund_outcome(request: web.Request) -> web.Response:
    status = form_str(await request.post(), "status")
    if status not in REFUND_STATUSES:
        return stripe_error(400, f"status must be one of {', '.join(REFUND_STATUSES)}")
    state.refund_outcomes.append(status)
    return web.Response()


async def _unregister_webhook(request: web.Request) -> web.Response:
    webhooks._webhooks.pop(request["rebill.match"]["id"], None)
    return web.Response()


API_ROUTES: list[Route] = [
    ("GET", re.compile(r"/v1/customers/search"), _customer_search),
    ("GET", re.compile(r"/v1/payment_intents/search"), _payment_intent_search),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods"), _customer_payment_methods),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods/(?P<pm>\w+)"),
     _customer_payment_method),
    ("GET", re.compile(r"/v1/accounts/(?P<account>[\w-]+)"), _retrieve_account),
]

CONTROL_ROUTES: list[Route] = [
    ("GET", re.compile(r"/_rebill/requests"), _list_requests),
    ("DELETE", re.compile(r"/_rebill/requests"), _clear_requests),
    ("POST", re.compile(r"/_rebill/accounts"), _register_account),
    ("POST", re.compile(r"/_rebill/slow_answers"), _add_slow_answer),
    ("POST", re.compile(r"/_rebill/refund_outcomes"), _add_refund_outcome),
    ("DELETE", re.compile(r"/_config/webhooks/(?P<id>[^/]+)"), _unregister_webhook),
    ("GET", re.compile(r"/oauth/authorize"), _oauth_authorize_page),
    ("POST", re.compile(r"/oauth/authorize"), _oauth_authorize_decide),
    ("POST", re.compile(r"/oauth/token"), _oauth_token),
    ("POST", re.compile(r"/oauth/deauthorize"), _oauth_deauthorize),
]
