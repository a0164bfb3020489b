"""The middleware in front of localstripe's own: request record, idempotency, account separation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web
from localstripe.errors import UserError

from devservices.localstripe_layer.core import (
    Handler,
    Json,
    StoredResponse,
    current_account,
    has_secret_key,
    json_response,
    match_route,
    no_such,
    random_token,
    request_params,
    state,
    strings_in,
    stripe_error,
)
from devservices.localstripe_layer.endpoints import API_ROUTES, CONTROL_ROUTES

_CARD_ELEMENT_JS = Path(__file__).with_name("card_element.js")


@web.middleware
async def rebill_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        return await _api_request(request, handler)
    if request.method == "GET" and request.path == "/js.stripe.com/v3/":
        return await _stripe_js(request, handler)
    control = match_route(CONTROL_ROUTES, request)
    if control is not None:
        return await control(request)
    response = await handler(request)
    if request.method == "DELETE" and request.path == "/_config/data" and response.status < 300:
        state.reset()
    return response


async def _stripe_js(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's Stripe.js mock with our card element after it (see card_element.js)."""
    response = await handler(request)
    if response.status != 200 or not isinstance(response, web.Response) or response.text is None:
        return response
    return web.Response(text=response.text + "\n" + _CARD_ELEMENT_JS.read_text(),
                        content_type="application/javascript", headers={"Cache-Control": "no-store"})


async def _api_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":  # CORS preflight from the Stripe.js mock
        return await handler(request)
    response = await _api_answer(request, handler)
    # Like Stripe, every answer names its request (stripe-python then writes an error as "Request req_…: message").
    response.headers.setdefault("Request-Id", "req_" + random_token(14))
    return response


async def _api_answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    header_account = request.headers.get("Stripe-Account") or None
    idempotency_key = request.headers.get("Idempotency-Key") or None
    state.requests.append({"method": request.method, "path": request.path,
                           "stripe_account": header_account, "idempotency_key": idempotency_key})
    if header_account in state.revoked:
        return stripe_error(403, f"The provided key does not have access to account '{header_account}' (or "
                                 "that account does not exist). Application access may have been revoked.",
                            code="account_invalid")
    params = await request_params(request)
    account = header_account or _client_side_account(request, params)
    token = current_account.set(account)
    try:
        if request.method != "POST" or idempotency_key is None:
            return await _forward(request, handler, params)
        return await _idempotent(request, handler, params, (account, idempotency_key))
    finally:
        current_account.reset(token)


def _client_side_account(request: web.Request, params: Json) -> str | None:
    # localstripe's Stripe.js mock (confirmCardSetup, 3-D Secure) authenticates with the publishable
    # key and the intent's client_secret but cannot send `stripeAccount`; the client_secret is the
    # proof of access, so such requests act as the intent's account.
    secret = params.get("client_secret")
    if has_secret_key(request) or not isinstance(secret, str):
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
            return stripe_error(
                400, "Keys for idempotent requests can only be used with the same parameters they were "
                     f"first used with. Try using a key other than '{scope[1]}' if you meant to execute a "
                     "different request.", type_="idempotency_error")
        return web.Response(status=stored.status, body=stored.body, content_type=stored.content_type,
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": scope[1]})
    if scope in state.in_flight:
        return stripe_error(409, "There is currently another in-progress request using this idempotency key "
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
        state.idempotency[scope] = StoredResponse(fingerprint, response.status, response.body,
                                                  response.content_type)
    return response


async def _forward(request: web.Request, handler: Handler, params: Json) -> web.StreamResponse:
    for slow in state.slow_answers:
        if slow.count and slow.method == request.method and request.path.startswith(slow.path):
            slow.count -= 1
            await asyncio.sleep(slow.seconds)
            break
    account = current_account.get()
    for segment in request.path.split("/")[2:]:
        if segment in state.owners and state.owners[segment][1] != account:
            return no_such(segment, "id", 404)
    for name, value in strings_in(params):
        if value in state.owners and state.owners[value][1] != account:
            # Real Stripe answers 400 for a parameter naming an object it cannot see.
            return no_such(value, name, 400)

    customer_id = _customer_in_path(request)
    if request.method == "GET" and customer_id in state.deleted_customers:
        # Like Stripe: a deleted customer can still be retrieved, as a stub saying it was deleted.
        return json_response({"id": customer_id, "object": "customer", "deleted": True})

    own = match_route(API_ROUTES, request)
    try:
        if own is not None:
            if not has_secret_key(request):
                return stripe_error(401, "Invalid API Key provided.")
            response = await own(request)
        else:
            response = await handler(request)
    except UserError as e:
        return e.to_response()
    except web.HTTPException as e:
        return stripe_error(e.status, f"Unrecognized request URL ({request.method}: {request.path}).")
    if request.method == "DELETE" and customer_id is not None and response.status == 200:
        state.deleted_customers.add(customer_id)
    return _normalise_not_found(response)


def _customer_in_path(request: web.Request) -> str | None:
    """The customer id of `/v1/customers/{id}` (the customer itself, not a nested resource)."""
    segments = request.path.strip("/").split("/")
    return segments[2] if len(segments) == 3 and segments[:2] == ["v1", "customers"] else None


def _normalise_not_found(response: web.StreamResponse) -> web.StreamResponse:
    # localstripe's 404s say only "Not Found"; the SDK and our code look at `code`.
    if response.status != 404 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" not in error:
        error["code"] = "resource_missing"
        return json_response(body, status=404)
    return response

