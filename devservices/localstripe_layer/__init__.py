"""What real Stripe has and localstripe lacks, as patches plus one aiohttp middleware (dev/test only).

`install(app)` is called once by `devservices.localstripe_server` before the app starts. It adds:
idempotency keys, Connect-style separation by the `Stripe-Account` header (with `account` stamped on
webhook events), a record of /v1 requests, Customer Search, a few parameters localstripe rejects,
a fake of Connect OAuth (its authorize page included) plus `GET /v1/accounts/{id}`, and a card element
appended to localstripe's Stripe.js (card_element.js). Control endpoints live under `/_rebill/`.
"""

from __future__ import annotations

from aiohttp import web

from devservices.localstripe_layer.core import state
from devservices.localstripe_layer.middleware import rebill_middleware
from devservices.localstripe_layer.patches import patch_resources

__all__ = ["install", "state"]

_installed = False


def install(app: web.Application) -> None:
    """Patch localstripe and put the middleware in front of its own (call before the app starts)."""
    global _installed
    if not _installed:
        patch_resources()
        _installed = True
    if rebill_middleware not in app.middlewares:
        app.middlewares.insert(0, rebill_middleware)
