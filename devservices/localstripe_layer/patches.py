"""Changes to localstripe's resources: ownership by account, per-account lists, `account` on events,
parameters real Stripe accepts, and no pickling to /tmp."""

from __future__ import annotations

from typing import Any

from localstripe import resources
from localstripe.errors import UserError
from localstripe.resources import Event, List, PaymentIntent, PaymentMethod, Refund, SetupIntent, StripeObject

from devservices.localstripe_layer.core import Json, current_account, state


def patch_resources() -> None:
    original_init = StripeObject.__init__

    def init(self: StripeObject, id: str | None = None) -> None:
        original_init(self, id)
        if not isinstance(self, List):
            state.owners[self.id] = (self.object, current_account.get())

    StripeObject.__init__ = init  # type: ignore[method-assign]

    # Lists (every list endpoint, and nested ones such as customer.sources) only show objects of the
    # account the request acts as; paging is computed on the filtered list so has_more stays right.
    def page(self: List) -> tuple[list[Any], int]:
        account = current_account.get()
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

    # localstripe makes every refund succeeded; Stripe may answer one pending, failed or canceled (other payment
    # methods, a closed account): a test says so beforehand (POST /_rebill/refund_outcomes).
    original_refund_init = Refund.__init__

    def refund_init(self: Refund, **kwargs: Any) -> None:
        original_refund_init(self, **kwargs)
        if state.refund_outcomes:
            self.status = state.refund_outcomes.pop(0)
            if self.status != "succeeded":
                self.balance_transaction = None

    Refund.__init__ = refund_init  # type: ignore[method-assign]

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

    patch_lifecycle_events()



def patch_lifecycle_events() -> None:
    """What real Stripe does around saving a card and localstripe does not: a succeeded SetupIntent
    attaches its card to the SetupIntent's customer, and `setup_intent.succeeded`,
    `payment_method.attached` / `payment_method.detached` events are sent. Done with two properties so
    every code path that changes them (attach, detach, confirm, 3-D Secure) is covered."""
    from localstripe.resources import Event
    from localstripe.webhooks import schedule_webhook

    def get_customer(self: PaymentMethod) -> str | None:
        return self.__dict__.get("_rebill_customer")

    def set_customer(self: PaymentMethod, customer: str | None) -> None:
        previous = self.__dict__.get("_rebill_customer")
        self.__dict__["_rebill_customer"] = customer
        if customer != previous and previous is not None:
            schedule_webhook(Event("payment_method.detached", self))
        if customer != previous and customer is not None:
            schedule_webhook(Event("payment_method.attached", self))

    PaymentMethod.customer = property(get_customer, set_customer)  # type: ignore[assignment,attr-defined]

    def get_status(self: SetupIntent) -> str | None:
        return self.__dict__.get("_rebill_status")

    def set_status(self: SetupIntent, status: str) -> None:
        previous = self.__dict__.get("_rebill_status")
        self.__dict__["_rebill_status"] = status
        if status == "succeeded" and previous != "succeeded":
            if self.customer and self.payment_method:
                payment_method = PaymentMethod._api_retrieve(self.payment_method)
                if isinstance(payment_method, PaymentMethod) and payment_method.customer is None:
                    payment_method.customer = self.customer
            schedule_webhook(Event("setup_intent.succeeded", self))

    SetupIntent.status = property(get_status, set_status)  # type: ignore[assignment,attr-defined]
