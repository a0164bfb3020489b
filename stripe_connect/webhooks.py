"""The webhook inbox: verify, store once, route to the agency's schema, handle once.

Each event is committed to the inbox (unique event id) before it is handled; handling runs in its own
transaction with the inbox row locked, and marks the row handled in that same transaction. A crash or an
error leaves the row unhandled, we answer 500, and Stripe's retry handles it. A second delivery of a
handled event is acknowledged without handling it again.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.models import Agency
from stripe_connect.gateway import AgencyStripe, account_retrieve, webhook_event_construct
from stripe_connect.models import ConnectedAccount, WebhookEvent
from stripe_connect.selectors import agency_for_stripe_account

logger = logging.getLogger(__name__)


class WebhookRejected(Exception):
    pass


def _verified(payload: bytes, signature: str, *, platform: bool) -> stripe.Event:
    try:
        return webhook_event_construct(payload, signature, platform=platform)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected(f"Bad signature: {error.user_message or error}") from None
    except ValueError:
        raise WebhookRejected("Not a Stripe event") from None


def webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent:
    """The Connect endpoint: events of the agencies' connected accounts only. Verify and store the event, then
    handle it (once). Raises WebhookRejected for what we refuse."""
    event = _verified(payload, signature, platform=False)
    account_id = str(getattr(event, "account", None) or "")
    if not account_id:
        raise WebhookRejected("Not a connected account's event: the platform account's events have their own "
                              "endpoint")
    agency = agency_for_stripe_account(account_id=account_id)
    if agency is None:
        logger.warning("Stripe event %s (%s) for unknown account %s rejected", event.id, event.type, account_id)
        raise WebhookRejected(f"Unknown account {account_id}")
    return _store_and_handle(event, account_id=account_id, agency=agency)


def platform_webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent:
    """The platform-account endpoint (agencies' cards and wallets with the platform), with its own secret: a
    connected account's event is refused here."""
    event = _verified(payload, signature, platform=True)
    if getattr(event, "account", None):
        raise WebhookRejected("A connected account's event: those go to the Connect endpoint")
    return _store_and_handle(event, account_id="", agency=None)


def _store_and_handle(event: stripe.Event, *, account_id: str, agency: Agency | None) -> WebhookEvent:
    inbox, _ = WebhookEvent.objects.get_or_create(
        event_id=event.id,
        defaults={"event_type": event.type, "account_id": account_id, "agency": agency,
                  "payload": event.to_dict()},
    )
    return webhook_event_handle(inbox_id=inbox.pk)


def webhook_event_handle(*, inbox_id: int) -> WebhookEvent:
    try:
        with transaction.atomic():
            inbox = WebhookEvent.objects.select_for_update(of=("self",)).select_related("agency").get(pk=inbox_id)
            if inbox.status in (WebhookEvent.Status.HANDLED, WebhookEvent.Status.IGNORED):
                return inbox
            inbox.attempts += 1
            handler = _tenant_handlers().get(inbox.event_type)
            platform_handler = _platform_handlers().get(inbox.event_type)
            if inbox.agency is not None and inbox.event_type == "account.application.deauthorized":
                _on_deauthorized(account_id=inbox.account_id)
                inbox.status = WebhookEvent.Status.HANDLED
            elif not inbox.account_id and platform_handler is not None:
                platform_handler(object_id=_object_id(inbox.payload), event_type=inbox.event_type)
                inbox.status = WebhookEvent.Status.HANDLED
            elif inbox.agency is None or handler is None:
                inbox.status = WebhookEvent.Status.IGNORED
            else:
                object_id = _object_id(inbox.payload)
                with tenant_context(inbox.agency):
                    handler(object_id=object_id, api=AgencyStripe(inbox.account_id), event_type=inbox.event_type)
                inbox.status = WebhookEvent.Status.HANDLED
            inbox.handled_at = timezone.now()
            inbox.last_error = ""
            inbox.save(update_fields=["status", "attempts", "handled_at", "last_error"])
            return inbox
    except Exception as error:
        logger.exception("Stripe event %s failed; Stripe will retry it", inbox_id)
        WebhookEvent.objects.filter(pk=inbox_id).exclude(status=WebhookEvent.Status.HANDLED).update(
            status=WebhookEvent.Status.FAILED, last_error=repr(error)[:2000], attempts=F("attempts") + 1
        )
        raise


def _on_deauthorized(*, account_id: str) -> None:
    """The agency disconnected us from its Stripe dashboard. Believe Stripe, not the event: forget the
    account only if Stripe no longer lets us reach it."""
    try:
        account_retrieve(account_id)
    except (stripe.PermissionError, stripe.AuthenticationError, stripe.InvalidRequestError):
        ConnectedAccount.objects.filter(account_id=account_id).delete()
        logger.info("Stripe account %s deauthorized our platform; disconnected", account_id)


def _object_id(payload: dict[str, Any]) -> str:
    return str(((payload.get("data") or {}).get("object") or {}).get("id") or "")


def _platform_handlers() -> dict[str, Any]:
    from agency_wallets.webhook_handlers import HANDLERS  # imported late (app registry)

    return HANDLERS


def _tenant_handlers() -> dict[str, Any]:
    from billing.webhook_handlers import HANDLERS  # tenant-side handlers; imported late (app registry)

    return HANDLERS
