"""Endpoints localstripe does not have: Customer Search, customer payment methods, accounts, the
Connect OAuth fake, and the `/_rebill/` control endpoints."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from localstripe import webhooks
from localstripe.resources import PaymentMethod, store

from devservices.localstripe_layer.core import (
    Json,
    Route,
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
             if key.startswith("customer:") and state.owners.get(c.id, ("", None))[1] == account
             and combine(p(c) for p in predicates)]
    found.sort(key=lambda c: c.created, reverse=True)
    return json_response({"object": "search_result", "data": [c._export() for c in found[:limit]],
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
        state.accounts.setdefault(account_id, {"name": None, "email": None})
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


async def _unregister_webhook(request: web.Request) -> web.Response:
    webhooks._webhooks.pop(request["rebill.match"]["id"], None)
    return web.Response()


API_ROUTES: list[Route] = [
    ("GET", re.compile(r"/v1/customers/search"), _customer_search),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods"), _customer_payment_methods),
    ("GET", re.compile(r"/v1/customers/(?P<customer>cus_\w+)/payment_methods/(?P<pm>\w+)"),
     _customer_payment_method),
    ("GET", re.compile(r"/v1/accounts/(?P<account>[\w-]+)"), _retrieve_account),
]

CONTROL_ROUTES: list[Route] = [
    ("GET", re.compile(r"/_rebill/requests"), _list_requests),
    ("DELETE", re.compile(r"/_rebill/requests"), _clear_requests),
    ("POST", re.compile(r"/_rebill/accounts"), _register_account),
    ("DELETE", re.compile(r"/_config/webhooks/(?P<id>[^/]+)"), _unregister_webhook),
    ("POST", re.compile(r"/oauth/token"), _oauth_token),
    ("POST", re.compile(r"/oauth/deauthorize"), _oauth_deauthorize),
]
